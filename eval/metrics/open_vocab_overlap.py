"""Open-vocabulary label overlap per emotion-wheel level (emoreason.eval.open_vocab), as MER-UniBench scores it."""

from __future__ import annotations

# `import evaluate`, never `from evaluate import Metric`: evaluate.load takes the first
# EvaluationModule subclass in this file's namespace, and that would be the imported base class.
import datasets
import evaluate

from emoreason.eval.metrics import metric_info
from emoreason.eval.open_vocab import open_vocab_metrics
from emoreason.eval.taxonomy import DEFAULT_WHEEL, load_wheel, shipped_wheel

_DESCRIPTION = """Both label sets of a sample are mapped onto each wheel level's classes; precision and recall
of the overlap are averaged over samples and F is computed from the two averages."""

_INPUTS = """
Args:
    predictions: per sample, a list of predicted emotion words (may be empty: it scores 0).
    references: per sample, a non-empty list of reference emotion words.
    wheel: a shipped wheel name or a wheel YAML path (default: emotion_wheel_v1).
Returns:
    OpenVocabResult.to_json(): wheel_version, levels {1, 2, 3: {precision, recall, f1}}, samples,
    unmapped_predicted, unmapped_reference, empty_predictions.
"""


class OpenVocabOverlap(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        words = datasets.Sequence(datasets.Value("string"))
        return metric_info(_DESCRIPTION, _INPUTS, predictions=words, references=words)

    def _compute(self, predictions: list[list[str]], references: list[list[str]], wheel: str | None = None) -> dict:
        loaded = shipped_wheel() if wheel in (None, DEFAULT_WHEEL) else load_wheel(wheel)
        return open_vocab_metrics(references, predictions, loaded).to_json()
