"""Tiny native twins and a clip, built once per test session (each twin takes about half a second)."""

from __future__ import annotations

from pathlib import Path

from conftest import gradient_frames, tone

_built: dict[str, str] = {}


def twin_dir(tmp_path_factory, kind: str) -> str:
    from emoreason.native.tiny import build_tiny_native

    if kind not in _built:
        _built[kind] = build_tiny_native(kind, tmp_path_factory.mktemp(f"twin_{kind}") / "model")
    return _built[kind]


def write_test_clip(path: Path, n: int = 24, audio: bool = True) -> Path:
    """A 2 s, 12 fps, 96x128 H.264 clip (brightness ramps with the frame index), with a 440 Hz tone."""
    from emoreason.data_prep.synthetic import write_clip

    write_clip(path, gradient_frames(n), tone(n / 12, 16000, 440.0)[0] if audio else None, fps=12, sample_rate=16000, codec="h264")
    return path
