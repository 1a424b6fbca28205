"""MER2023 / MER2024 / MER2025-track1 label CSVs: `name,discrete,valence`.

    name,discrete,valence
    sample_00000001,happy,1.6
    sample_00000002,worried,-0.8

The valence column is optional (test sets ship without it) and an empty cell means no valence.
"""

from __future__ import annotations

import os

from emoreason.data_prep.adapters.records import Location, VideoClips, collect_samples, read_csv_rows, video_adapter
from emoreason.data_prep.adapters.values import cell, parse_float
from emoreason.schema import Sample, SchemaError

DATASET = "mer2023"


@video_adapter
def read_mer2023(path: str | os.PathLike, clips: VideoClips, errors: list[SchemaError] | None) -> list[Sample]:
    """Samples with `targets.emotion` (and `targets.valence` when given), video at `<video_dir>/<name>.<ext>`."""

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        name = cell(row, ["name"], loc)
        label = cell(row, ["discrete"], loc)
        valence = parse_float(cell(row, ["valence"], loc, required=False), "valence", loc)
        return clips.sample(
            name, loc, targets={"emotion": label.lower(), "valence": valence}, source={"dataset": DATASET, "label": label}
        )

    return collect_samples(read_csv_rows(path, ["name", "discrete"]), to_sample, errors)
