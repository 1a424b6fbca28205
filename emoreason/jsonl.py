"""Append-only JSONL files that survive a kill mid-write.

A killed writer can leave a last line without its newline; `JsonlAppender` cuts that torn tail
before appending, so a resumed run neither loses complete records nor duplicates them. A complete
line that is not a JSON object (a bad disk block, a hand edit) is named by file and line:
`read_complete_records` raises JsonlError, and `drop_bad_lines` removes such lines, keeping the rest.
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


class JsonlError(ValueError):
    """A complete line that is not a JSON object (with the required keys); the message names file and line."""


def _parse_line(path: Path, lineno: int, line: bytes, required: tuple[str, ...] = ()) -> dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise JsonlError(f"{path} line {lineno}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise JsonlError(f"{path} line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise JsonlError(f"{path} line {lineno}: expected a JSON object, got {type(record).__name__}")
    missing = [key for key in required if key not in record]
    if missing:
        raise JsonlError(f"{path} line {lineno}: a record without {', '.join(repr(k) for k in missing)}")
    return record


def read_complete_records(path: str | os.PathLike, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Records from complete (newline-terminated) lines; a torn tail is ignored, a bad line is a JsonlError."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                break
            if line.strip():
                records.append(_parse_line(path, lineno, line, required))
    return records


def drop_bad_lines(path: str | os.PathLike, required: tuple[str, ...] = ()) -> list[str]:
    """Remove complete lines that are not JSON objects with the `required` keys; return why each went.

    Every good line is kept, in order, and the file is rewritten atomically, so a crash here loses
    nothing. A torn last line is left for JsonlAppender to cut.
    """
    from emoreason.atomic import atomic_path

    path = Path(path)
    if not path.exists():
        return []
    *complete, tail = path.read_bytes().split(b"\n")  # not splitlines(): JSON text may hold \r or \x1c
    lines = [line + b"\n" for line in complete] + ([tail] if tail else [])
    kept, problems = [], []
    for lineno, raw in enumerate(lines, start=1):
        complete = raw.endswith(b"\n")
        if complete and raw.strip():
            try:
                _parse_line(path, lineno, raw, required)
            except JsonlError as exc:
                problems.append(str(exc))
                continue
        kept.append(raw)
    if problems:
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"".join(kept))
    return problems


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
