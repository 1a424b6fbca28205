"""Content hashes for media files and canonical hashes for settings."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Any


@functools.lru_cache(maxsize=4096)
def _file_sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_content_hash(path: str | os.PathLike) -> str:
    """sha256 of the file's bytes; memoised per (path, size, mtime, inode) so a batch hashes each file once."""
    st = os.stat(path)
    return _file_sha256(os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ino)


def settings_hash(settings: dict[str, Any]) -> str:
    """Order-independent sha256 of JSON-able settings."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
