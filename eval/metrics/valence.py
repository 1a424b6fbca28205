"""Continuous valence (or arousal): MSE and Lin's CCC, and MER2023's combined score (emoreason.eval.valence)."""

from __future__ import annotations

# `import evaluate`, never `from evaluate import Metric`: evaluate.load takes the first
# EvaluationModule subclass in this file's namespace, and that would be the imported base class.
import evaluate

from emoreason.eval.metrics import metric_info
from emoreason.eval.valence import ccc, mer2023_score, mse

_DESCRIPTION = "Valence regression metrics: mean squared error and Lin's concordance correlation coefficient."

_INPUTS = """
Args:
    predictions: predicted valence values (finite numbers).
    references: reference valence values (finite numbers).
    weighted_f1: optional weighted F1 of the same run; with it the result adds MER2023's score,
        weighted F1 - 0.25 x MSE.
Returns:
    {"mse", "ccc"} and, given weighted_f1, "mer2023_score".
"""


class Valence(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _INPUTS, predictions="float64", references="float64")

    def _compute(self, predictions: list[float], references: list[float], weighted_f1: float | None = None) -> dict:
        result = {"mse": mse(references, predictions), "ccc": ccc(references, predictions)}
        if weighted_f1 is not None:
            result["mer2023_score"] = mer2023_score(weighted_f1, result["mse"])
        return result
