"""Still images with Pillow, as one RGB frame so faces and frame encoders treat them like video."""

from __future__ import annotations

import os

import numpy as np

from emoreason.media.errors import MediaError, check_file
from emoreason.media.sniff import open_failure_reason


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """Return [h, w, 3] uint8 RGB, or raise MediaError."""
    from PIL import Image, UnidentifiedImageError

    check_file(path)
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"))
    except UnidentifiedImageError:
        raise MediaError(open_failure_reason(path), path, "Pillow cannot decode it as an image") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError("unreadable", path, str(exc)[:200]) from None
