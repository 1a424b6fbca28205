"""Media -> encoder input arrays: the audio waveform, the sampled frames (one decode for every visual
modality), and the annotated landmarks at the frames the video sampling picks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.features.media_config import MediaConfig
from emoreason.features.results import Absence, Decoded
from emoreason.media.errors import MediaError
from emoreason.schema import Landmarks

# 25 ms at 16 kHz: the HuBERT/wav2vec2 conv stack needs at least one 20 ms frame (400 samples).
MIN_AUDIO_SAMPLES = 400


@dataclasses.dataclass
class Frames:
    frames: np.ndarray  # [n, h, w, 3] uint8 RGB
    times: list[float]  # [n] seconds


def decode_step(decoded: Decoded, modalities: list[str], compute) -> None:
    """Add `compute()`'s encoder inputs to `decoded.pending`; a MediaError makes each of `modalities` absent
    (unless already absent for its own reason)."""
    try:
        decoded.pending |= compute()
    except MediaError as exc:
        for m in modalities:
            if m not in decoded.result.absent:
                decoded.result.absent[m] = Absence.from_error(m, exc)


def audio_wave(path: Path, media: MediaConfig) -> np.ndarray:
    from emoreason.media.audio import decode_audio

    wave = decode_audio(path, AUDIO_SAMPLE_RATE, media.audio.max_seconds)  # [n]
    if len(wave) < MIN_AUDIO_SAMPLES:
        raise MediaError("empty", path, f"audio of {len(wave)} samples is shorter than one encoder frame")
    return wave


def sampled_frames(path: Path, kind: str, media: MediaConfig) -> Frames:
    """A video's frames at media.video's sampling, or a still image as one frame at t = 0."""
    if kind == "video":
        from emoreason.media.video import decode_frames

        decoded = decode_frames(path, media.video)
        return Frames(decoded.frames, [round(float(t), 4) for t in decoded.times])
    from emoreason.media.image import decode_image

    return Frames(decode_image(path)[None], [0.0])


def sampled_annotation(landmarks: Landmarks, media: MediaConfig) -> np.ndarray:
    """The annotated points [k, 68, 2] at the frames media.video's sampling picks, as a decoded clip would be."""
    from emoreason.media.video import sample_frame_indices

    points = np.asarray(landmarks.points)  # [frames, 68, 2]
    if media.video.fps is not None and landmarks.fps is None:
        raise MediaError("bad_field", None, "landmarks.fps is needed to sample annotated frames by media.video.fps")
    return points[sample_frame_indices(len(points), landmarks.fps or 1.0, media.video)]
