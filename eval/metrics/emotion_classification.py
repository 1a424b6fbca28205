"""Discrete emotion labels: accuracy, weighted/macro F1, UAR/WAR, confusion (emoreason.eval.classification)."""

from __future__ import annotations

from collections.abc import Sequence

# `import evaluate`, never `from evaluate import Metric`: evaluate.load takes the first
# EvaluationModule subclass in this file's namespace, and that would be the imported base class.
import evaluate

from emoreason.eval.classification import classification_metrics
from emoreason.eval.metrics import metric_info

_DESCRIPTION = """Classification metrics over a closed label set, as MER2023 (weighted F1) and DFEW/MAFW
(UAR, WAR) report them. An answer that named no label is an unmatched miss for its reference class,
never a class of its own."""

_INPUTS = """
Args:
    predictions: predicted labels, each a label of `labels`, or "" (or None, though not as the first
        item: evaluate rejects that) for an answer that named no label.
    references: reference labels, each a label of `labels`.
    labels: the label set (required).
Returns:
    ClassificationResult.to_json(): labels, accuracy, weighted_f1, macro_f1, uar, war,
    per_class_recall, confusion, total, unmatched.
"""


class EmotionClassification(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _INPUTS, predictions="string", references="string")

    def _compute(self, predictions: list[str | None], references: list[str], labels: Sequence[str] | None = None) -> dict:
        if not labels:
            raise ValueError("labels: expected the label set, e.g. labels=['happy', 'sad', 'neutral']")
        unmatched_as_none = [p if p else None for p in predictions]
        return classification_metrics(references, unmatched_as_none, labels).to_json()
