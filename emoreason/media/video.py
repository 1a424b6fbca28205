"""Video frames with decord (PyAV where decord fails): N uniformly spaced frames, or frames at a fixed rate."""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from emoreason.config import check
from emoreason.media.errors import MediaError, check_file
from emoreason.media.sniff import open_failure_reason


@dataclasses.dataclass
class FrameSampling:
    """How frames are picked from a clip. Set exactly one of num_frames, fps and frame_index (or peak_frame)."""

    num_frames: int | None = 8
    """Uniformly spaced frames over the whole clip (segment centres, as TSN/VideoMAE sample)."""
    fps: float | None = None
    """Frames per second of clip time instead of a fixed count."""
    max_frames: int = 64
    """Upper bound when sampling by fps, so a long clip cannot exhaust memory."""
    short_side: int | None = None
    """Resize so the shorter side has this many pixels while decoding; None keeps the original size."""
    frame_index: int | None = None
    """One frame, at this 0-based index of the clip, instead of num_frames or fps."""
    peak_frame: bool = False
    """One frame, at each sample's annotated peak (`action_units.peak_frame`; MERR's peak_index, the frame
    Emotion-LLaMA's EVA-CLIP sees); `for_sample` turns it into that sample's frame_index."""

    def __post_init__(self) -> None:
        check(isinstance(self.peak_frame, bool), "peak_frame", "true or false", self.peak_frame)
        modes = [self.num_frames is not None, self.fps is not None, self.frame_index is not None or self.peak_frame]
        check(sum(modes) == 1, "num_frames", "exactly one of num_frames, fps and frame_index (or peak_frame) to be set")
        check(self.frame_index is None or (isinstance(self.frame_index, int) and not isinstance(self.frame_index, bool)
                                           and self.frame_index >= 0), "frame_index", "null or an integer >= 0",
              self.frame_index)
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


def for_sample(sampling: FrameSampling, peak_frame: int | None) -> FrameSampling:
    """The sampling for one sample: with `peak_frame` on, its frame_index is the sample's annotated peak."""
    if not sampling.peak_frame:
        return sampling
    if peak_frame is None:
        raise MediaError("bad_field", None, "video.peak_frame is on but the sample has no action_units.peak_frame")
    return dataclasses.replace(sampling, frame_index=peak_frame)


def sample_frame_indices(total: int, source_fps: float, sampling: FrameSampling) -> np.ndarray:
    """Indices into a clip of `total` frames at `source_fps` (sorted, may repeat for short clips)."""
    if sampling.peak_frame and sampling.frame_index is None:
        raise MediaError("bad_field", None, "video.peak_frame sampling needs the sample's peak frame (for_sample)")
    if sampling.frame_index is not None:
        if sampling.frame_index >= total:
            raise MediaError("bad_field", None, f"video.frame_index {sampling.frame_index} is past the clip's last "
                                                f"frame {total - 1}")
        return np.array([sampling.frame_index], dtype=np.int64)
    if sampling.num_frames is not None:
        # Centre of each of num_frames equal segments: 8 of 100 frames -> 6, 18, ..., 93.
        edges = np.linspace(0, total, sampling.num_frames + 1)
        return np.minimum(((edges[:-1] + edges[1:]) / 2).astype(np.int64), total - 1)
    step = source_fps / sampling.fps
    count = min(sampling.max_frames, max(1, int(total / step)))
    return np.minimum((np.arange(count) * step).astype(np.int64), total - 1)


def _open_reader(path: str | os.PathLike, short_side: int | None):
    import decord

    kwargs = {}
    if short_side is not None:
        probe = decord.VideoReader(str(path), num_threads=1)
        h, w = probe[0].shape[:2] if len(probe) else (0, 0)
        kwargs = _scaled_size(h, w, short_side)
    return decord.VideoReader(str(path), num_threads=1, **kwargs)


def _scaled_size(h: int, w: int, short_side: int) -> dict[str, int]:
    scale = short_side / min(h, w) if min(h, w) else 1.0
    # Even sizes, as the yuv->rgb scalers want.
    return {"width": int(round(w * scale / 2)) * 2, "height": int(round(h * scale / 2)) * 2}


def decode_frames(path: str | os.PathLike, sampling: FrameSampling) -> DecodedFrames:
    """Decode the sampled frames of a video file, or raise MediaError with a reason code.

    decord first (random access); PyAV when decord fails. decord 0.6 mis-sizes frames whose RGB
    rows need padding to FFmpeg's alignment (widths such as 8, 16, 24 or 48 pixels): their
    batches fail with "DECORDArrayCopyFromTo: The size must exactly match" although the clip is fine.
    """
    check_file(path)
    try:
        return _decode_with_decord(path, sampling)
    except MediaError:
        raise
    except Exception as exc:  # decord raises bare RuntimeErrors/DECORDErrors for every failure
        decord_error = exc
    return _decode_with_pyav(path, sampling, decord_error)


def _decode_with_decord(path: str | os.PathLike, sampling: FrameSampling) -> DecodedFrames:
    reader = _open_reader(path, sampling.short_side)
    total = len(reader)
    if total == 0:
        raise RuntimeError("decord found no video frames")
    source_fps = float(reader.get_avg_fps()) or 25.0
    indices = sample_frame_indices(total, source_fps, sampling)
    frames = reader.get_batch(indices.tolist()).asnumpy()  # [n, h, w, 3]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise RuntimeError(f"decord returned frames of shape {frames.shape}")
    return DecodedFrames(frames=frames, times=indices / source_fps, source_fps=source_fps, duration=total / source_fps)


def _decode_with_pyav(path: str | os.PathLike, sampling: FrameSampling, decord_error: BaseException) -> DecodedFrames:
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises InvalidDataError, OSError, ... for broken inputs
        raise MediaError(open_failure_reason(path), path, library_message(exc)) from None
    with container:
        if not container.streams.video:
            what = "audio only" if container.streams.audio else "no audio or video stream"
            raise MediaError("no_video", path, f"the file holds {what}")
        stream = container.streams.video[0]
        source_fps = float(stream.average_rate or stream.guessed_rate or 25.0)
        try:
            # Headers may not count frames; demuxing counts them without decoding.
            total = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            container.seek(0)
        except Exception as exc:
            raise MediaError("unreadable", path, f"video demux failed: {library_message(exc)}") from None
        if total == 0:
            raise MediaError("empty", path, "no video frames")
        indices = sample_frame_indices(total, source_fps, sampling)
        size = None
        wanted: dict[int, np.ndarray] = {}
        sampled = set(indices.tolist())
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i > indices[-1]:
                    break
                if i in sampled:
                    if size is None:
                        size = _scaled_size(frame.height, frame.width, sampling.short_side) if sampling.short_side else {}
                    wanted[i] = frame.to_ndarray(format="rgb24", **size)  # [h, w, 3]
        except Exception as exc:
            if not wanted:
                raise MediaError("unreadable", path, f"frame decode failed: {library_message(exc)}") from None
            # A damaged tail still yields the frames before it.
    if not wanted:
        raise MediaError("unreadable", path, f"no frame decoded (decord: {library_message(decord_error)})")
    # A header that over-counts frames, or a damaged tail: each index takes the last frame decoded before it.
    kept = np.array([max((j for j in wanted if j <= i), default=min(wanted)) for i in indices])
    frames = np.stack([wanted[int(i)] for i in kept])
    return DecodedFrames(frames=frames, times=kept / source_fps, source_fps=source_fps, duration=total / source_fps)


# "[00:46:50] /github/workspace/src/video/video_reader.cc:151: " and the like: where the library was built.
_BUILD_LOCATION = re.compile(r"\[\d\d:\d\d:\d\d\]\s*|(?:/[\w.+-]+)+\.(?:cc|cpp|cxx|c|h|hpp):\d+:?\s*")


def library_message(exc: BaseException) -> str:
    """The first line of a decoder's error, without the timestamps and source paths of its build."""
    lines = str(exc).strip().splitlines()
    text = _BUILD_LOCATION.sub("", lines[0]).strip() if lines else ""
    return text[:200] or type(exc).__name__
