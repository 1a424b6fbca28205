"""Emotion-LLaMA's MERR annotations: a JSON object keyed by sample name.

    {"sample_00000047": {
        "AU_list": ["AU04", "AU07"], "peak_index": "12", "peak_AU_list": ["AU04"],
        "visual_prior_list": ["brow lowerer", "lid tightener"],
        "audio_prior_list": "The speaker's tone is sharp and loud.",
        "pseu_emotion": "angry",
        "caption": "..."}}                      # MERR_coarse_grained.json

MERR_fine_grained.json entries carry `text` (the subtitle) and `smp_reason_caption` (the full
reasoning) instead of `caption`. Field-name variants seen in published copies are accepted
(`emotion` for `pseu_emotion`, either caption field in either file); a field of the wrong type is
an error, never silently dropped.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from emoreason.data_prep.adapters.records import (
    AnnotationError,
    Location,
    build_sample,
    checked_dir,
    collect_samples,
    json_entries,
    media_path,
    read_json,
)
from emoreason.data_prep.adapters.values import json_text
from emoreason.schema import Sample, SchemaError

_EMOTION = ["pseu_emotion", "emotion"]
_FACE = ["visual_prior_list"]
_AUDIO = ["audio_prior_list"]
_SUBTITLE = ["text", "subtitle"]
_REASONING_COARSE = ["caption", "smp_reason_caption"]
_REASONING_FINE = ["smp_reason_caption", "caption"]


def _read_merr(
    path: str | os.PathLike,
    dataset: str,
    required: Literal["emotion", "reasoning"],
    reasoning_fields: list[str],
    video_dir: str,
    ext: str,
    errors: list[SchemaError] | None,
) -> list[Sample]:
    video_dir = checked_dir(video_dir)

    def to_sample(named: tuple[str, Any], loc: Location) -> Sample:
        name, entry = named
        if not isinstance(entry, dict):
            raise loc.error("<entry>", f"expected an object, got {type(entry).__name__}")
        emotion = json_text(entry, _EMOTION, loc)
        reasoning = json_text(entry, reasoning_fields, loc)
        if required == "emotion" and emotion is None:
            raise loc.error(_EMOTION[0], "required field is missing (the emotion label)")
        if required == "reasoning" and reasoning is None:
            raise loc.error(reasoning_fields[0], "required field is missing (the reasoning caption)")
        clues = {
            "face": json_text(entry, _FACE, loc, join_lists=True),
            "audio": json_text(entry, _AUDIO, loc, join_lists=True),
        }
        record = {
            "id": name,
            "media": {"video": media_path(video_dir, name, ext)},
            "subtitle": json_text(entry, _SUBTITLE, loc),
            "targets": {"emotion": emotion.lower() if emotion else None, "clues": clues, "reasoning": reasoning},
            "source": {"dataset": dataset, "label": emotion},
        }
        return build_sample(record, loc)

    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, None, "<json>", f"expected an object keyed by sample name, got {type(data).__name__}")
    return collect_samples(json_entries(path, data, ["name"]), to_sample, errors)


def read_merr_coarse(
    path: str | os.PathLike,
    *,
    video_dir: str = "video",
    ext: str = "mp4",
    errors: list[SchemaError] | None = None,
) -> list[Sample]:
    """MERR_coarse_grained.json: emotion required; AU and audio descriptions become face/audio clues."""
    return _read_merr(path, "merr-coarse", "emotion", _REASONING_COARSE, video_dir, ext, errors)


def read_merr_fine(
    path: str | os.PathLike,
    *,
    video_dir: str = "video",
    ext: str = "mp4",
    errors: list[SchemaError] | None = None,
) -> list[Sample]:
    """MERR_fine_grained.json: `smp_reason_caption` required as the reasoning; `text` is the subtitle."""
    return _read_merr(path, "merr-fine", "reasoning", _REASONING_FINE, video_dir, ext, errors)
