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
    VideoClips,
    collect_samples,
    json_entries,
    read_csv_rows,
    read_json,
    video_adapter,
)
from emoreason.data_prep.adapters.values import cell, json_text
from emoreason.schema import Sample, SchemaError

DATASET = "emer"
_NAME = ["names", "name"]
# English before Chinese: the reasoning targets and prompts of this project are English.
_REASON = ["reasons", "reason", "english", "chinese"]
_EMOTION = ["emotions", "emotion"]
_SUBTITLE = ["subtitles", "subtitle"]


def _fields(reason: str | None, emotion: str | None, subtitle: str | None) -> dict[str, Any]:
    return {
        "subtitle": subtitle,
        "targets": {"emotion": emotion.lower() if emotion else None, "reasoning": reason},
        "source": {"dataset": DATASET, "label": emotion},
    }


@video_adapter
def read_emer(path: str | os.PathLike, clips: VideoClips, errors: list[SchemaError] | None) -> list[Sample]:
    """Samples with `targets.reasoning` (plus emotion and subtitle where the file has them)."""

    def from_row(row: dict[str, str], loc: Location) -> Sample:
        name = cell(row, _NAME, loc)
        fields = _fields(cell(row, _REASON, loc), cell(row, _EMOTION, loc, required=False), cell(row, _SUBTITLE, loc, required=False))
        return clips.sample(name, loc, **fields)

    def from_entry(named: tuple[str, dict[str, Any]], loc: Location) -> Sample:
        name, entry = named
        reason = json_text(entry, _REASON, loc)
        if reason is None:
            raise loc.error(_REASON[0], f"required field is missing: expected one of {_REASON}")
        return clips.sample(name, loc, **_fields(reason, json_text(entry, _EMOTION, loc), json_text(entry, _SUBTITLE, loc)))

    if Path(path).suffix.lower() == ".json":
        return collect_samples(json_entries(path, read_json(path), _NAME), from_entry, errors)
    return collect_samples(read_csv_rows(path, [_NAME, _REASON]), from_row, errors)
