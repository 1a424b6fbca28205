"""Video frames with decord: N uniformly spaced frames, or frames at a fixed rate."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from emoreason.config import check
from emoreason.media.errors import MediaError, check_file
from emoreason.media.sniff import open_failure_reason


@dataclasses.dataclass
class FrameSampling:
    """How frames are picked from a clip. Set exactly one of num_frames and fps."""

    num_frames: int | None = 8
    """Uniformly spaced frames over the whole clip (segment centres, as TSN/VideoMAE sample)."""
    fps: float | None = None
    """Frames per second of clip time instead of a fixed count."""
    max_frames: int = 64
    """Upper bound when sampling by fps, so a long clip cannot exhaust memory."""
    short_side: int | None = None
    """Resize so the shorter side has this many pixels while decoding; None keeps the original size."""

    def __post_init__(self) -> None:
        check((self.num_frames is None) != (self.fps is None), "num_frames", "exactly one of num_frames and fps to be set")
        check(self.num_frames is None or self.num_frames > 0, "num_frames", "a positive integer", self.num_frames)
        check(self.fps is None or self.fps > 0, "fps", "a positive number", self.fps)
        check(self.max_frames > 0, "max_frames", "a positive integer", self.max_frames)
        check(self.short_side is None or self.short_side >= 16, "short_side", "null or at least 16", self.short_side)


@dataclasses.dataclass
class DecodedFrames:
    frames: np.ndarray  # [n, h, w, 3] uint8 RGB
    times: np.ndarray  # [n] seconds from the clip start
    source_fps: float
    duration: float  # seconds


def sample_frame_indices(total: int, source_fps: float, sampling: FrameSampling) -> np.ndarray:
    """Indices into a clip of `total` frames at `source_fps` (sorted, may repeat for short clips)."""
    if sampling.num_frames is not None:
        # Centre of each of num_frames equal segments: 8 of 100 frames -> 6, 18, ..., 93.
        edges = np.linspace(0, total, sampling.num_frames + 1)
        return np.minimum(((edges[:-1] + edges[1:]) / 2).astype(np.int64), total - 1)
    step = source_fps / sampling.fps
    count = min(sampling.max_frames, max(1, int(total / step)))
    return np.minimum((np.arange(count) * step).astype(np.int64), total - 1)


def _open_reader(path: str | os.PathLike, short_side: int | None):
    import decord

    check_file(path)
    kwargs = {}
    if short_side is not None:
        probe = decord.VideoReader(str(path), num_threads=1)
        h, w = probe[0].shape[:2] if len(probe) else (0, 0)
        scale = short_side / min(h, w) if min(h, w) else 1.0
        # decord wants even sizes for the yuv->rgb scaler.
        kwargs = {"width": int(round(w * scale / 2)) * 2, "height": int(round(h * scale / 2)) * 2}
    return decord.VideoReader(str(path), num_threads=1, **kwargs)


def decode_frames(path: str | os.PathLike, sampling: FrameSampling) -> DecodedFrames:
    """Decode the sampled frames of a video file, or raise MediaError with a reason code."""
    try:
        reader = _open_reader(path, sampling.short_side)
    except MediaError:
        raise
    except Exception as exc:  # decord raises bare RuntimeErrors/DECORDErrors for every failure
        raise MediaError(open_failure_reason(path), path, _first_line(exc)) from None
    total = len(reader)
    if total == 0:
        raise MediaError("empty", path, "no video frames")
    source_fps = float(reader.get_avg_fps()) or 25.0
    indices = sample_frame_indices(total, source_fps, sampling)
    try:
        frames = reader.get_batch(indices.tolist()).asnumpy()  # [n, h, w, 3]
    except Exception as exc:
        raise MediaError("unreadable", path, f"frame decode failed: {_first_line(exc)}") from None
    return DecodedFrames(frames=frames, times=indices / source_fps, source_fps=source_fps, duration=total / source_fps)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
