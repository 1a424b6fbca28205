"""Still images with Pillow, as one RGB frame so faces and frame encoders treat them like video.

A few kilobytes of PNG can declare a billion pixels (a decompression bomb), so the pixel count is
read from the header and checked against a limit before anything is decoded.
"""

from __future__ import annotations

import os

import numpy as np

from emoreason.media.errors import MediaError, check_file
from emoreason.media.sniff import open_failure_reason

# 40 megapixels: an 8K frame (33 MP) passes, and the decoded RGB array stays under 120 MB.
MAX_IMAGE_PIXELS = 40_000_000


def _open(path: str | os.PathLike):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise MediaError(open_failure_reason(path), path, "Pillow cannot decode it as an image") from None
    except Image.DecompressionBombError as exc:  # Pillow's own limit, when ours is off or larger
        raise MediaError("too_large", path, str(exc)[:200]) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise MediaError("unreadable", path, str(exc)[:200]) from None


def _check_pixels(img, path: str | os.PathLike, max_pixels: int | None) -> None:
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        raise MediaError("too_large", path, f"{width}x{height} = {width * height} pixels > limit {max_pixels}")


def check_image(path: str | os.PathLike, max_pixels: int | None = MAX_IMAGE_PIXELS) -> None:
    """MediaError for an image that is not one, or has more than `max_pixels` pixels; reads only its header."""
    check_file(path)
    with _open(path) as img:
        _check_pixels(img, path, max_pixels)


def decode_image(path: str | os.PathLike, max_pixels: int | None = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Return [h, w, 3] uint8 RGB, or raise MediaError (`too_large` over `max_pixels`; None: Pillow's limit only)."""
    from PIL import Image

    check_file(path)
    with _open(path) as img:
        _check_pixels(img, path, max_pixels)
        try:
            img.load()
            return np.asarray(img.convert("RGB"))
        except Image.DecompressionBombError as exc:
            raise MediaError("too_large", path, str(exc)[:200]) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise MediaError("unreadable", path, str(exc)[:200]) from None
