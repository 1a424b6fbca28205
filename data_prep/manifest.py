"""Read prep input: a schema JSONL, or a manifest of media paths (CSV with an id column, or plain text)."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

from emoreason.constants import MEDIA_KINDS
from emoreason.schema import Sample, SchemaError, iter_samples, parse_sample

_VIDEO_EXT = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".mpg", ".mpeg", ".m4v"}
_AUDIO_EXT = {".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus"}
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def media_kind_for(path: str) -> str | None:
    ext = PurePosixPath(path).suffix.lower()
    if ext in _VIDEO_EXT:
        return "video"
    if ext in _AUDIO_EXT:
        return "audio"
    if ext in _IMAGE_EXT:
        return "image"
    return None


def _from_paths(path: Path, errors: list[SchemaError]) -> list[Sample]:
    samples, seen = [], set()
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        media = line.strip()
        if not media or media.startswith("#"):
            continue
        kind = media_kind_for(media)
        sample_id = PurePosixPath(media).stem
        try:
            if kind is None:
                raise SchemaError(path, lineno, "media", f"expected a video, audio or image file extension, got {media!r}")
            if sample_id in seen:
                raise SchemaError(path, lineno, "id", f"expected a unique file stem, {sample_id!r} repeats")
            samples.append(parse_sample({"id": sample_id, "media": {kind: media}}, path, lineno))
            seen.add(sample_id)
        except SchemaError as exc:
            errors.append(exc)
    return samples


def _from_csv(path: Path, errors: list[SchemaError]) -> list[Sample]:
    samples, seen = [], set()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        if "id" not in columns or not columns & set(MEDIA_KINDS):
            raise SchemaError(path, 1, "header", f"expected an 'id' column and at least one of {list(MEDIA_KINDS)}, got {sorted(columns)}")
        for lineno, row in enumerate(reader, start=2):
            record = {"id": row["id"], "media": {k: row[k] for k in MEDIA_KINDS if row.get(k)}}
            if row.get("subtitle"):
                record["subtitle"] = row["subtitle"]
            try:
                sample = parse_sample(record, path, lineno)
                if sample.id in seen:
                    raise SchemaError(path, lineno, "id", f"expected a unique id, {sample.id!r} repeats")
            except SchemaError as exc:
                errors.append(exc)
                continue
            seen.add(sample.id)
            samples.append(sample)
    return samples


def read_prep_input(path: str | Path, errors: list[SchemaError]) -> list[Sample]:
    """Samples to prepare; records that fail validation go to `errors` and are skipped."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"prep input not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(iter_samples(path, errors))
    if suffix == ".csv":
        return _from_csv(path, errors)
    return _from_paths(path, errors)
