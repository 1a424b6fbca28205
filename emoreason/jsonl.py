"""Append-only JSONL files that survive a kill mid-write.

A killed writer can leave a last line without its newline; `open_for_append` cuts that torn tail
before appending, so a resumed run neither loses complete records nor duplicates them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


def iter_json_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) for non-blank lines."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, line


def read_complete_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records from complete (newline-terminated, parseable) lines; a torn tail is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            if line.strip():
                records.append(json.loads(line))
    return records


def truncate_torn_tail(path: str | os.PathLike) -> None:
    """Drop a trailing partial line left by a writer killed mid-line."""
    path = Path(path)
    if not path.exists():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    with open(path, "rb+") as f:
        f.truncate(keep)


class JsonlAppender:
    """Appends one record per line, flushed and fsynced so a kill loses at most the line in flight."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        truncate_torn_tail(self.path)
        self._file: TextIO = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
