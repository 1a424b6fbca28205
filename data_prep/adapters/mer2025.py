"""MER2025 track 2 (open-vocabulary labels) and track 3 (descriptions) training CSVs.

    name,openset                                   # track2_train_ovmerd.csv, track2_train_mercaptionplus.csv
    sample_00000001,"['happy', 'relieved']"

    name,reason                                    # track3_train_ovmerd.csv, track3_train_mercaptionplus.csv
    sample_00000001,"The person smiles broadly ..."

`openset` is a Python list literal in the published files; JSON lists and comma-separated text
are read too. Subtitles ship separately (subtitle_chieng.csv) and are not merged here.
"""

from __future__ import annotations

import os

from emoreason.data_prep.adapters.records import Location, VideoClips, collect_samples, read_csv_rows, video_adapter
from emoreason.data_prep.adapters.values import cell, parse_labels
from emoreason.schema import Sample, SchemaError


@video_adapter
def read_mer2025_ov(path: str | os.PathLike, clips: VideoClips, errors: list[SchemaError] | None) -> list[Sample]:
    """Samples with `targets.open_vocab`, labels lowercased in their published order."""

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        name = cell(row, ["name"], loc)
        raw = cell(row, ["openset"], loc)
        labels = parse_labels(raw, "openset", loc)
        if labels is None:
            raise loc.error("openset", f"expected at least one label, got {raw!r}")
        targets = {"open_vocab": [label.lower() for label in labels]}
        return clips.sample(name, loc, targets=targets, source={"dataset": "mer2025-ov", "label": raw})

    return collect_samples(read_csv_rows(path, ["name", "openset"]), to_sample, errors)


@video_adapter
def read_mer2025_reason(path: str | os.PathLike, clips: VideoClips, errors: list[SchemaError] | None) -> list[Sample]:
    """Samples with `targets.reasoning` from the track 3 description."""

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        name = cell(row, ["name"], loc)
        return clips.sample(name, loc, targets={"reasoning": cell(row, ["reason"], loc)}, source={"dataset": "mer2025-reason"})

    return collect_samples(read_csv_rows(path, ["name", "reason"]), to_sample, errors)
