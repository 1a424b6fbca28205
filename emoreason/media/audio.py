"""Audio tracks decoded with PyAV and resampled to 16 kHz mono with torchaudio.

PyAV rather than torchaudio.load: on CPU-only installs torchaudio's decoders need torchcodec,
which cannot load there (see ../shared/ENVIRONMENT.md). PyAV carries its own FFmpeg.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.media.errors import MediaError, check_file
from emoreason.media.sniff import open_failure_reason


def _to_float_planar(frame_array: np.ndarray, fmt_name: str, channels: int) -> np.ndarray:
    """An AudioFrame.to_ndarray() result as float32 [channels, samples] in [-1, 1]."""
    arr = frame_array
    if not fmt_name.endswith("p"):  # packed: [1, samples * channels], interleaved
        arr = arr.reshape(-1, channels).T
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
    return arr.astype(np.float32, copy=False)


def decode_audio(
    path: str | os.PathLike,
    sample_rate: int = AUDIO_SAMPLE_RATE,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Mono float32 waveform [n] at `sample_rate`, or MediaError (no_audio, empty, unreadable, too_long)."""
    import av

    check_file(path)
    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises InvalidDataError, OSError, ... for broken inputs
        raise MediaError(open_failure_reason(path), path, str(exc)[:200]) from None
    with container:
        if not container.streams.audio:
            raise MediaError("no_audio", path)
        stream = container.streams.audio[0]
        source_rate = stream.rate or stream.codec_context.sample_rate
        chunks: list[np.ndarray] = []
        decoded = 0
        limit = None if max_seconds is None else int(max_seconds * source_rate)
        try:
            for frame in container.decode(stream):
                planar = _to_float_planar(frame.to_ndarray(), frame.format.name, len(frame.layout.channels))
                chunks.append(planar.mean(axis=0))  # [samples], downmixed
                decoded += planar.shape[1]
                if limit is not None and decoded > limit:
                    raise MediaError("too_long", path, f"audio longer than max_seconds={max_seconds}")
        except MediaError:
            raise
        except Exception as exc:
            if not chunks:
                raise MediaError("unreadable", path, f"audio decode failed: {str(exc)[:200]}") from None
            # A truncated tail still yields the audio before the damage; keep it.
    if not chunks or decoded == 0:
        raise MediaError("empty", path, "audio track has no samples")
    wave = np.concatenate(chunks)
    if source_rate != sample_rate:
        import torchaudio.functional

        wave = torchaudio.functional.resample(torch.from_numpy(wave), source_rate, sample_rate).numpy()
    return wave.astype(np.float32, copy=False)
