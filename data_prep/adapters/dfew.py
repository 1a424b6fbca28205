"""DFEW single-label split files, e.g. EmoLabel_DataSplit/train(single-labeled)/set_1.csv.

    video_name,label
    1,3
    27,1

Labels are 1 Happy, 2 Sad, 3 Neutral, 4 Angry, 5 Surprise, 6 Disgust, 7 Fear. A 0 marks a clip
without a single majority label; those belong to the multi-label split and are rejected here.
Numeric names become DFEW's zero-padded clip names (1 -> 00001), used as id and video file name.
"""

from __future__ import annotations

import os

from emoreason.data_prep.adapters.records import Location, VideoClips, collect_samples, read_csv_rows, video_adapter
from emoreason.data_prep.adapters.values import cell
from emoreason.schema import Sample, SchemaError

DATASET = "dfew"
LABELS: dict[int, str] = {1: "happy", 2: "sad", 3: "neutral", 4: "angry", 5: "surprise", 6: "disgust", 7: "fear"}
_EXPECTED = "a label 1..7 (" + ", ".join(f"{k} {v}" for k, v in LABELS.items()) + ")"


@video_adapter
def read_dfew(path: str | os.PathLike, clips: VideoClips, errors: list[SchemaError] | None) -> list[Sample]:
    """Samples with `targets.emotion` in lowercase; the numeric label is kept in `source.label`."""

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        raw_name = cell(row, ["video_name"], loc)
        name = f"{int(raw_name):05d}" if raw_name.isdigit() else raw_name
        raw_label = cell(row, ["label"], loc)
        label = int(raw_label) if raw_label.isdigit() else None
        if label not in LABELS:
            raise loc.error("label", f"expected {_EXPECTED}, got {raw_label!r}")
        source = {"dataset": DATASET, "label": label, "video_name": raw_name}
        return clips.sample(name, loc, targets={"emotion": LABELS[label]}, source=source)

    return collect_samples(read_csv_rows(path, ["video_name", "label"]), to_sample, errors)
