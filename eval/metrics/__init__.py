"""The metrics as local `evaluate` modules: evaluate.load("<this folder>/<name>.py") works offline.

    import evaluate
    from emoreason.eval.metrics import metric_path
    metric = evaluate.load(metric_path("emotion_classification"), keep_in_memory=True)

Each module only adapts evaluate's input columns to the emoreason.eval function it names; the
numbers are those functions' numbers.
"""

from __future__ import annotations

from pathlib import Path

METRIC_NAMES: tuple[str, ...] = ("emotion_classification", "valence", "open_vocab_overlap", "offline_judge", "cot_structure")


def metric_path(name: str) -> str:
    """Absolute path of the module script `name`, as evaluate.load takes it."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}: expected one of {list(METRIC_NAMES)}")
    return str((Path(__file__).parent / f"{name}.py").resolve())
