"""Explanation similarity without a judge endpoint: WordLlama embedding cosine and lexical F1 (emoreason.eval.offline_judge)."""

from __future__ import annotations

# `import evaluate`, never `from evaluate import Metric`: evaluate.load takes the first
# EvaluationModule subclass in this file's namespace, and that would be the imported base class.
import evaluate

from emoreason.eval.metrics import metric_info
from emoreason.eval.offline_judge import load_encoder, offline_judge

_DESCRIPTION = """offline_embedding_similarity: cosine similarity of the WordLlama (l2_supercat, 256-d)
embeddings shipped in the wordllama wheel; offline_lexical_f1: token F1 of the content words. Neither
needs a network; they are not LLM-judge scores and are reported under their own names."""

_INPUTS = """
Args:
    predictions: predicted explanations (an empty one scores 0).
    references: reference explanations (non-empty).
    cache_dir: optional folder for the encoder's tokenizer copy (default $XDG_CACHE_HOME/emoreason/wordllama).
Returns:
    OfflineJudgeResult.to_json(): offline_embedding_similarity and offline_lexical_f1 (means),
    per_item (both scores per sample), samples, empty_predictions, encoder.
"""


class OfflineJudge(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _INPUTS, predictions="string", references="string")

    def _compute(self, predictions: list[str], references: list[str], cache_dir: str | None = None) -> dict:
        return offline_judge(predictions, references, load_encoder(cache_dir)).to_json()
