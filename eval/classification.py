"""Discrete-label metrics as the field reports them: accuracy, weighted/macro F1, UAR/WAR, confusion.

- weighted F1 is the MER2023 protocol (per-class F1 weighted by the class's reference count);
- UAR (mean per-class recall) and WAR (overall accuracy) are what DFEW and MAFW report.

Predictions that name no label of the set stay unmatched: they count as wrong for their reference
class and never become a class of their own, nor are they coerced to the nearest class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

UNMATCHED = "<unmatched>"


@dataclasses.dataclass
class ClassificationResult:
    labels: list[str]
    accuracy: float
    weighted_f1: float
    macro_f1: float
    uar: float
    war: float
    per_class_recall: dict[str, float]
    confusion: list[list[int]]
    """Rows: reference label (in `labels` order); columns: predicted label, then one for unmatched."""
    total: int
    unmatched: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def classification_metrics(references: Sequence[str], predictions: Sequence[str | None], labels: Sequence[str]) -> ClassificationResult:
    """`predictions[i]` is a label of `labels` or None (the answer named no label)."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    if not references:
        raise ValueError("no samples to score")
    labels = list(labels)
    unknown = sorted(set(references) - set(labels))
    if unknown:
        raise ValueError(f"references use labels outside the label set {labels}: {unknown}")
    bad = sorted({p for p in predictions if p is not None and p not in labels})
    if bad:
        raise ValueError(f"predictions {bad} are not in the label set {labels}; pass None for an answer that named no label")
    y_true = list(references)
    y_pred = [UNMATCHED if p is None else p for p in predictions]
    # `labels=` restricts the averages to the real classes: an unmatched answer is a miss, not a class.
    kwargs = {"labels": labels, "zero_division": 0}
    recalls = recall_score(y_true, y_pred, average=None, **kwargs)
    present = [i for i, label in enumerate(labels) if label in set(y_true)]
    matrix = confusion_matrix(y_true, y_pred, labels=labels + [UNMATCHED])[: len(labels)]
    accuracy = float(accuracy_score(y_true, y_pred))
    return ClassificationResult(
        labels=labels,
        accuracy=accuracy,
        weighted_f1=float(f1_score(y_true, y_pred, average="weighted", **kwargs)),
        macro_f1=float(f1_score(y_true, y_pred, average="macro", **kwargs)),
        # Mean recall over the classes that occur in the references (a class with no sample has no recall).
        uar=float(np.mean(recalls[present])),
        war=accuracy,
        per_class_recall={labels[i]: float(recalls[i]) for i in present},
        confusion=matrix.tolist(),
        total=len(y_true),
        unmatched=sum(p is None for p in predictions),
    )
