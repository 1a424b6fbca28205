"""Cut a frame sequence into the fixed-length clips a video encoder takes."""

from __future__ import annotations

import math

import numpy as np


def clip_indices(num_frames: int, clip_length: int) -> np.ndarray:
    """Frame indices [clips, clip_length] covering `num_frames` frames in order.

    More frames than one clip: ceil(n / clip_length) consecutive, near-equal spans, each resampled
    uniformly to clip_length (7 frames, length 4 -> spans of 4 and 3, the 3 repeating one frame).
    Fewer frames: one clip that repeats frames by the same uniform sampling.
    """
    if num_frames < 1 or clip_length < 1:
        raise ValueError(f"clip_indices: need num_frames >= 1 and clip_length >= 1, got {num_frames}, {clip_length}")
    spans = np.array_split(np.arange(num_frames), math.ceil(num_frames / clip_length))
    # Each span has >= 1 frame (clips <= num_frames), so rounding a linspace over it never leaves it.
    return np.stack([span[np.linspace(0, len(span) - 1, clip_length).round().astype(int)] for span in spans])
