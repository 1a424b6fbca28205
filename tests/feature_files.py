"""Damage safetensors feature files the way a disk fault or a stray write would."""

from __future__ import annotations

from pathlib import Path

FP16_NAN = b"\x00\x7e"  # 0x7E00, little-endian
FP16_ONE = b"\x00\x3c"  # 1.0


def overwrite_data(path: Path, offset: int, value: bytes) -> None:
    """Overwrite bytes of a safetensors file's data section (after its 8-byte length and JSON header)."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little") + offset
    data[start : start + len(value)] = value
    path.write_bytes(bytes(data))


def break_header(path: Path) -> None:
    """A header length far beyond the file: what a torn or overwritten first block looks like."""
    path.write_bytes(b"\xff" * 8 + path.read_bytes()[8:])
