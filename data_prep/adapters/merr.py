"""Emotion-LLaMA's MERR annotations: a JSON object keyed by sample name.

    {"sample_00000047": {
        "AU_list": ["AU04", "AU07"], "peak_index": "12", "peak_AU_list": ["AU04"],
        "visual_prior_list": ["brow lowerer", "lid tightener"],
        "audio_prior_list": "The speaker's tone is sharp and loud.",
        "pseu_emotion": "angry",
        "caption": "..."}}                      # MERR_coarse_grained.json

MERR_fine_grained.json entries carry `text` (the subtitle) and `smp_reason_caption` (the full
reasoning) instead of `caption`. `AU_list`, `peak_AU_list` and `peak_index` become the sample's
`action_units` (codes, peak codes, peak frame); the prior lists are kept verbatim under
`source.merr` (and, joined, as the face/audio clues), so `merr_entry` writes the entry back. Field-name variants seen in published copies are accepted
(`emotion` for `pseu_emotion`, either caption field in either file); a field of the wrong type is
an error, never silently dropped.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from emoreason.data_prep.adapters.records import AnnotationError, Location, VideoClips, collect_samples, json_entries, read_json, video_adapter
from emoreason.action_units import normalize_au_code
from emoreason.data_prep.adapters.values import json_text
from emoreason.schema import Sample, SchemaError

_EMOTION = ["pseu_emotion", "emotion"]
_FACE = ["visual_prior_list"]
_AUDIO = ["audio_prior_list"]
_SUBTITLE = ["text", "subtitle"]
_REASONING_COARSE = ["caption", "smp_reason_caption"]
_REASONING_FINE = ["smp_reason_caption", "caption"]
_PRIORS = ("visual_prior_list", "audio_prior_list")


def _au_list(entry: dict[str, Any], field: str, loc: Location) -> list[str] | None:
    """MERR's AU lists (["AU04", "AU07"]) as canonical codes; a value that is no AU code names the field."""
    value = entry.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise loc.error(field, f"expected a list of action unit codes such as ['AU04', 'AU07'], got {value!r}")
    codes = []
    for text in value:
        code = normalize_au_code(text)
        if code is None:
            raise loc.error(field, f"expected FACS action unit codes such as 'AU04', got {text!r}")
        if code not in codes:
            codes.append(code)
    return codes


def _peak_index(entry: dict[str, Any], loc: Location) -> int | None:
    value = entry.get("peak_index")
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise loc.error("peak_index", f"expected a frame index >= 0 (MERR writes it as a string such as '12'), got {value!r}")


def _action_units(entry: dict[str, Any], loc: Location) -> dict[str, Any] | None:
    codes, peak_codes, peak = _au_list(entry, "AU_list", loc), _au_list(entry, "peak_AU_list", loc), _peak_index(entry, loc)
    if codes is None and (peak_codes is not None or peak is not None):
        codes = []  # a peak annotation without the clip-level list still carries the peak
    if codes is None:
        return None
    return {"codes": codes, "peak_codes": peak_codes, "peak_frame": peak}


def _read_merr(
    path: str | os.PathLike,
    dataset: str,
    required: Literal["emotion", "reasoning"],
    reasoning_fields: list[str],
    clips: VideoClips,
    errors: list[SchemaError] | None,
) -> list[Sample]:
    def to_sample(named: tuple[str, dict[str, Any]], loc: Location) -> Sample:
        name, entry = named
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
        return clips.sample(
            name,
            loc,
            subtitle=json_text(entry, _SUBTITLE, loc),
            targets={"emotion": emotion.lower() if emotion else None, "clues": clues, "reasoning": reasoning},
            action_units=_action_units(entry, loc),
            source={"dataset": dataset, "label": emotion,
                    "merr": {field: entry[field] for field in _PRIORS if entry.get(field) is not None}},
        )

    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, None, "<json>", f"expected an object keyed by sample name, got {type(data).__name__}")
    return collect_samples(json_entries(path, data, ["name"]), to_sample, errors)


@video_adapter
def read_merr_coarse(path: str | os.PathLike, clips: VideoClips, errors: list[SchemaError] | None) -> list[Sample]:
    """MERR_coarse_grained.json: emotion required; AU and audio descriptions become face/audio clues."""
    return _read_merr(path, "merr-coarse", "emotion", _REASONING_COARSE, clips, errors)


@video_adapter
def read_merr_fine(path: str | os.PathLike, clips: VideoClips, errors: list[SchemaError] | None) -> list[Sample]:
    """MERR_fine_grained.json: `smp_reason_caption` required as the reasoning; `text` is the subtitle."""
    return _read_merr(path, "merr-fine", "reasoning", _REASONING_FINE, clips, errors)


def merr_entry(sample: Sample) -> dict[str, Any]:
    """The MERR fields a sample read by this adapter carries, in MERR's own layout (peak_index as a string)."""
    entry: dict[str, Any] = {}
    units = sample.action_units
    if units is not None:
        entry["AU_list"] = list(units.codes)
        if units.peak_codes is not None:
            entry["peak_AU_list"] = list(units.peak_codes)
        if units.peak_frame is not None:
            entry["peak_index"] = str(units.peak_frame)
    entry |= sample.source.get("merr", {})
    if sample.source.get("label") is not None:
        entry["pseu_emotion"] = sample.source["label"]
    if sample.subtitle is not None:
        entry["text"] = sample.subtitle
    return entry
