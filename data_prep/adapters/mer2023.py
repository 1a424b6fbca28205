"""MER2023 / MER2024 / MER2025-track1 label CSVs: `name,discrete,valence`.

    name,discrete,valence
    sample_00000001,happy,1.6
    sample_00000002,worried,-0.8

The valence column is optional (test sets ship without it) and an empty cell means no valence.
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
from emoreason.data_prep.adapters.values import cell, parse_float
from emoreason.schema import Sample, SchemaError

DATASET = "mer2023"


def read_mer2023(
    path: str | os.PathLike,
    *,
    video_dir: str = "video",
    ext: str = "mp4",
    errors: list[SchemaError] | None = None,
) -> list[Sample]:
    """Samples with `targets.emotion` (and `targets.valence` when given), video at `<video_dir>/<name>.<ext>`."""
    video_dir = checked_dir(video_dir)

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        name = cell(row, ["name"], loc)
        label = cell(row, ["discrete"], loc)
        valence = parse_float(cell(row, ["valence"], loc, required=False), "valence", loc)
        record = {
            "id": name,
            "media": {"video": media_path(video_dir, name, ext)},
            "targets": {"emotion": label.lower(), "valence": valence},
            "source": {"dataset": DATASET, "label": label},
        }
        return build_sample(record, loc)

    return collect_samples(read_csv_rows(path, ["name", "discrete"]), to_sample, errors)
