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

from emoreason.data_prep.adapters.records import (
    Location,
    build_sample,
    checked_dir,
    collect_samples,
    media_path,
    read_csv_rows,
)
from emoreason.data_prep.adapters.values import cell, parse_labels
from emoreason.schema import Sample, SchemaError


def read_mer2025_ov(
    path: str | os.PathLike,
    *,
    video_dir: str = "video",
    ext: str = "mp4",
    errors: list[SchemaError] | None = None,
) -> list[Sample]:
    """Samples with `targets.open_vocab`, labels lowercased in their published order."""
    video_dir = checked_dir(video_dir)

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        name = cell(row, ["name"], loc)
        raw = cell(row, ["openset"], loc)
        labels = parse_labels(raw, "openset", loc)
        if labels is None:
            raise loc.error("openset", f"expected at least one label, got {raw!r}")
        record = {
            "id": name,
            "media": {"video": media_path(video_dir, name, ext)},
            "targets": {"open_vocab": [label.lower() for label in labels]},
            "source": {"dataset": "mer2025-ov", "label": raw},
        }
        return build_sample(record, loc)

    return collect_samples(read_csv_rows(path, ["name", "openset"]), to_sample, errors)


def read_mer2025_reason(
    path: str | os.PathLike,
    *,
    video_dir: str = "video",
    ext: str = "mp4",
    errors: list[SchemaError] | None = None,
) -> list[Sample]:
    """Samples with `targets.reasoning` from the track 3 description."""
    video_dir = checked_dir(video_dir)

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        name = cell(row, ["name"], loc)
        record = {
            "id": name,
            "media": {"video": media_path(video_dir, name, ext)},
            "targets": {"reasoning": cell(row, ["reason"], loc)},
            "source": {"dataset": "mer2025-reason"},
        }
        return build_sample(record, loc)

    return collect_samples(read_csv_rows(path, ["name", "reason"]), to_sample, errors)
