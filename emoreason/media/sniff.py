"""Tell a corrupt media file from a file that was never media, by its leading bytes."""

from __future__ import annotations

import os

# (offset, magic) pairs of the containers and formats users feed us.
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # mp4 / mov / m4a / 3gp
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # matroska / webm
    (0, b"RIFF"),  # avi / wav
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"ID3"),  # mp3 with tags
    (0, b"\xff\xfb"),  # mp3 frame
    (0, b"\xff\xf1"),  # aac adts
    (0, b"\xff\xf9"),
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # mpeg-ps
    (0, b"\x47"),  # mpeg-ts sync byte
    (0, b"\x30\x26\xb2\x75"),  # asf / wmv
    (0, b"\x89PNG"),
    (0, b"\xff\xd8\xff"),  # jpeg
    (0, b"GIF8"),
    (0, b"BM"),  # bmp
)


def looks_like_media(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        head = f.read(16)
    return any(head[off : off + len(magic)] == magic for off, magic in _SIGNATURES)


def open_failure_reason(path: str | os.PathLike) -> str:
    """The MediaError reason for a file that a decoder refused to open."""
    try:
        return "unreadable" if looks_like_media(path) else "not_media"
    except OSError:
        return "unreadable"
