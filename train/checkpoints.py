"""Checkpoints a kill cannot leave half-written: staged, marked complete, then renamed into place.

HF Trainer writes `checkpoint-N/` in place, file after file, and `get_last_checkpoint` picks the
highest N whatever it holds, so a run killed mid-save fails to resume until someone deletes the
folder. Here each checkpoint is written into a hidden staging folder beside it, gets a marker
listing every file and its size, and is renamed into place in one step. Resume takes the newest
checkpoint whose marker matches its files; any other (a kill during rotation, a full disk, a
folder from an older emoreason) is skipped with a message naming it and why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from emoreason.atomic import write_json_atomic

MARKER_FILE = "emoreason_checkpoint.json"
# Neither HF's `checkpoint-*` glob (rotation) nor its `^checkpoint-\d+$` regex (resume) matches these names.
STAGING_PREFIX = ".staging-"
_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"{PREFIX_CHECKPOINT_DIR}-{step}"


def staging_root(run_dir: str | os.PathLike, step: int) -> Path:
    """The folder the Trainer writes `checkpoint-<step>/` into before it is published."""
    return Path(run_dir) / f"{STAGING_PREFIX}{checkpoint_name(step)}"


def remove_stale_staging(run_dir: str | os.PathLike) -> None:
    """Delete staging folders a killed run left behind (they never became checkpoints)."""
    for path in Path(run_dir).glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_marker(folder: Path, step: int) -> None:
    """Flush every file of a finished checkpoint to disk, then record them; written last, it means 'complete'."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MARKER_FILE:
            _fsync(path)
            files[path.relative_to(folder).as_posix()] = path.stat().st_size
    write_json_atomic(folder / MARKER_FILE, {"step": step, "files": files})


def incomplete_reason(folder: str | os.PathLike) -> str | None:
    """None when the checkpoint's files match its marker, else what is wrong."""
    folder = Path(folder)
    marker = folder / MARKER_FILE
    if not marker.is_file():
        return f"no {MARKER_FILE} (it is written last, so the save never finished)"
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable {MARKER_FILE} ({type(exc).__name__}: {exc})"
    for rel, size in files.items():
        path = folder / rel
        if not path.is_file():
            return f"{rel} is missing"
        if path.stat().st_size != size:
            return f"{rel} has {path.stat().st_size} bytes, the marker says {size}"
    return None


def publish(run_dir: str | os.PathLike, step: int) -> Path:
    """Mark the staged checkpoint-<step> complete and rename it into run_dir, replacing a leftover of that name."""
    run_dir = Path(run_dir)
    root = staging_root(run_dir, step)
    staged = root / checkpoint_name(step)
    write_marker(staged, step)
    target = run_dir / checkpoint_name(step)
    if target.exists():
        # Move the old folder out of the checkpoint namespace first: a kill between the two renames then
        # leaves no checkpoint-<step> at all, rather than a mixed one.
        trash = run_dir / f"{STAGING_PREFIX}replaced-{checkpoint_name(step)}"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(target, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(staged, target)
    _fsync(run_dir)
    root.rmdir()
    return target


def checkpoints_newest_first(output_dir: str | os.PathLike) -> list[Path]:
    output_dir = Path(output_dir)
    found = []
    for path in output_dir.iterdir():
        match = _CHECKPOINT_RE.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete checkpoint in output_dir; each newer incomplete one is reported on stderr and skipped."""
    for path in checkpoints_newest_first(output_dir):
        reason = incomplete_reason(path)
        if reason is None:
            return str(path)
        print(f"emoreason train: skipping incomplete checkpoint {path}: {reason}", file=sys.stderr)
    return None
