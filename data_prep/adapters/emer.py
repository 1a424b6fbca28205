"""EMER (Explainable Multimodal Emotion Reasoning) annotations, CSV or JSON.

The published files differ per release; all of these are read:

    names,emotions,subtitles,reasons       # EMER-V1 gt-eng.csv (emotion label and subtitle too)
    names,chinese,english                  # EMER-V2 final-EMER-reason.csv (English preferred)
    name,reason                            # OV-MERD / MER-Caption+ description files

JSON is a list of objects with the same fields, or an object keyed by name whose values have them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from emoreason.data_prep.adapters.records import (
    Location,
    build_sample,
    checked_dir,
    collect_samples,
    json_entries,
    media_path,
    read_csv_rows,
    read_json,
)
from emoreason.data_prep.adapters.values import cell, json_text
from emoreason.schema import Sample, SchemaError

DATASET = "emer"
_NAME = ["names", "name"]
# English before Chinese: the reasoning targets and prompts of this project are English.
_REASON = ["reasons", "reason", "english", "chinese"]
_EMOTION = ["emotions", "emotion"]
_SUBTITLE = ["subtitles", "subtitle"]


def _record(name: str, reason: str | None, emotion: str | None, subtitle: str | None, video_dir: str, ext: str) -> dict[str, Any]:
    return {
        "id": name,
        "media": {"video": media_path(video_dir, name, ext)},
        "subtitle": subtitle,
        "targets": {"emotion": emotion.lower() if emotion else None, "reasoning": reason},
        "source": {"dataset": DATASET, "label": emotion},
    }


def read_emer(
    path: str | os.PathLike,
    *,
    video_dir: str = "video",
    ext: str = "mp4",
    errors: list[SchemaError] | None = None,
) -> list[Sample]:
    """Samples with `targets.reasoning` (plus emotion and subtitle where the file has them)."""
    video_dir = checked_dir(video_dir)

    def from_row(row: dict[str, str], loc: Location) -> Sample:
        name = cell(row, _NAME, loc)
        record = _record(
            name,
            cell(row, _REASON, loc),
            cell(row, _EMOTION, loc, required=False),
            cell(row, _SUBTITLE, loc, required=False),
            video_dir,
            ext,
        )
        return build_sample(record, loc)

    def from_entry(named: tuple[str, Any], loc: Location) -> Sample:
        name, entry = named
        if not isinstance(entry, dict):
            raise loc.error("<entry>", f"expected an object, got {type(entry).__name__}")
        reason = json_text(entry, _REASON, loc)
        if reason is None:
            raise loc.error(_REASON[0], f"required field is missing: expected one of {_REASON}")
        record = _record(name, reason, json_text(entry, _EMOTION, loc), json_text(entry, _SUBTITLE, loc), video_dir, ext)
        return build_sample(record, loc)

    if Path(path).suffix.lower() == ".json":
        return collect_samples(json_entries(path, read_json(path), _NAME), from_entry, errors)
    return collect_samples(read_csv_rows(path, [_NAME, _REASON]), from_row, errors)
