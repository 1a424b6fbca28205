"""Chain-of-thought answers: structure, conclusion-reasoning consistency, modality grounding (emoreason.eval.cot)."""

from __future__ import annotations

from collections.abc import Sequence

# `import evaluate`, never `from evaluate import Metric`: evaluate.load takes the first
# EvaluationModule subclass in this file's namespace, and that would be the imported base class.
import datasets
import evaluate

from emoreason.eval.cot import cot_metrics
from emoreason.eval.metrics import metric_info

_DESCRIPTION = """Per answer: which of Observations / Interpretation / Conclusion are present, whether the
concluded emotion is a plurality emotion of the reasoning (on the emotion wheel's primaries), and the
share of modality mentions (voice, face, subtitle, scene) that refer to modalities the sample has.
See emoreason.eval.cot for the exact definitions."""

_INPUTS = """
Args:
    predictions: the chain-of-thought answers.
    modalities: per answer, what its sample has: names from audio, face, video, frame, subtitle, text.
    labels: optional closed label set; without it the conclusion is read as open vocabulary.
Returns:
    CotResult.to_json(): samples, structure_mean, section_rates, ordered_rate, consistency_rate,
    consistency_scored, consistency_none, consistency_none_because, grounding_mean,
    grounding_scored, grounding_none, ungrounded_mentions.
"""


class CotStructure(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        # Not `references`: what an answer is checked against is its sample's modalities.
        return metric_info(_DESCRIPTION, _INPUTS, predictions="string", modalities=datasets.Sequence(datasets.Value("string")))

    def _compute(self, predictions: list[str], modalities: list[list[str]], labels: Sequence[str] | None = None) -> dict:
        return cot_metrics(predictions, modalities, labels).to_json()
