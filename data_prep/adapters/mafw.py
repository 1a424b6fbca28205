"""MAFW single-expression split files, e.g. single/no_caption/set_1/train.txt.

    00025.mp4 anger
    00031.mp4 helplessness

One clip and one label per line, separated by spaces (or a comma, as in converted CSV copies; a
header line such as `name,label` is skipped). The label is one of the 11 class names, or its
1-based index in MAFW's order: anger, disgust, fear, happiness, neutral, sadness, surprise,
contempt, anxiety, helplessness, disappointment.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

from emoreason.data_prep.adapters.records import Location, VideoClips, collect_samples, read_text_lines, video_adapter
from emoreason.schema import Sample, SchemaError

DATASET = "mafw"
LABELS: tuple[str, ...] = (
    "anger", "disgust", "fear", "happiness", "neutral", "sadness",
    "surprise", "contempt", "anxiety", "helplessness", "disappointment",
)  # fmt: skip
_HEADER_LABELS = {"label", "labels", "emotion"}
_SEPARATOR = re.compile(r"\s*,\s*|\s+")


def _canonical(raw: str) -> str | None:
    if raw.isdigit() and 1 <= int(raw) <= len(LABELS):
        return LABELS[int(raw) - 1]
    return raw.lower() if raw.lower() in LABELS else None


@video_adapter
def read_mafw(path: str | os.PathLike, clips: VideoClips, errors: list[SchemaError] | None) -> list[Sample]:
    """Samples with `targets.emotion` in lowercase; the label as written is kept in `source.label`.

    A clip name with its own extension (00025.mp4) keeps it; a bare name gets `ext`.
    """

    def to_sample(line: str, loc: Location) -> Sample:
        parts = _SEPARATOR.split(line)
        if len(parts) != 2:
            raise loc.error("<line>", f"expected 'clip_name label', got {line!r}")
        clip, raw_label = parts
        label = _canonical(raw_label)
        if label is None:
            raise loc.error("label", f"expected one of {list(LABELS)} or 1..{len(LABELS)}, got {raw_label!r}")
        clip_path = PurePosixPath(clip)
        return clips.sample(clip_path.stem, loc, ext=clip_path.suffix or None, targets={"emotion": label},
                            source={"dataset": DATASET, "label": raw_label})

    lines = list(read_text_lines(path))
    if lines and _SEPARATOR.split(lines[0][1])[-1].lower() in _HEADER_LABELS:
        lines = lines[1:]
    return collect_samples(lines, to_sample, errors)
