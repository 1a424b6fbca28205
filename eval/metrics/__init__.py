"""The metrics as local `evaluate` modules: evaluate.load("<this folder>/<name>.py") works offline.

    import evaluate
    from emoreason.eval.metrics import metric_path
    metric = evaluate.load(metric_path("emotion_classification"), keep_in_memory=True)

Each module only adapts evaluate's input columns to the emoreason.eval function it names (its
MetricInfo from `metric_info`, one shape for all); the numbers are those functions' numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRIC_NAMES: tuple[str, ...] = ("emotion_classification", "valence", "open_vocab_overlap", "offline_judge", "cot_structure")


def metric_path(name: str) -> str:
    """Absolute path of the module script `name`, as evaluate.load takes it."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}: expected one of {list(METRIC_NAMES)}")
    return str((Path(__file__).parent / f"{name}.py").resolve())


def metric_info(description: str, inputs: str, **columns: str | Any) -> Any:
    """The `evaluate.MetricInfo` of one module here: its description and inputs text, no citation, and its
    input columns, each a `datasets` feature or a dtype name for a plain `datasets.Value` (e.g. "string")."""
    import datasets
    import evaluate

    features = {name: datasets.Value(c) if isinstance(c, str) else c for name, c in columns.items()}
    return evaluate.MetricInfo(description=description, citation="", inputs_description=inputs,
                               features=datasets.Features(features))
