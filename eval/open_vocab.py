"""Open-vocabulary label overlap on the emotion wheel, as MER-UniBench scores it.

Per sample and wheel level, both label sets are mapped onto the level's classes; precision is the
overlap over the predicted set, recall the overlap over the reference set. Precision and recall
are averaged over samples, and F is computed from the two averages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emoreason.eval.taxonomy import LEVELS, EmotionWheel, shipped_wheel


@dataclasses.dataclass
class LevelScore:
    precision: float
    recall: float
    f1: float


@dataclasses.dataclass
class OpenVocabResult:
    wheel_version: str
    levels: dict[int, LevelScore]
    samples: int
    unmapped_predicted: int
    """Predicted words the wheel does not know (they match only the identical reference word)."""
    unmapped_reference: int
    empty_predictions: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def set_overlap(predicted: set[str], reference: set[str]) -> tuple[float, float]:
    """(precision, recall) of one sample; an empty prediction scores 0 on both."""
    hits = len(predicted & reference)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(reference) if reference else 0.0
    return precision, recall


def open_vocab_metrics(
    references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], wheel: EmotionWheel | None = None
) -> OpenVocabResult:
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference label sets but {len(predictions)} predicted ones")
    if not references:
        raise ValueError("no samples to score")
    for i, ref in enumerate(references):
        if not ref:
            raise ValueError(f"reference {i} has no labels: open-vocabulary recall is undefined for it")
    wheel = wheel or shipped_wheel()
    levels: dict[int, LevelScore] = {}
    unmapped_pred = unmapped_ref = 0
    for level in LEVELS:
        precisions, recalls = [], []
        for ref, pred in zip(references, predictions):
            ref_set, ref_unknown = wheel.map_set(ref, level)
            pred_set, pred_unknown = wheel.map_set(pred, level)
            p, r = set_overlap(pred_set, ref_set)
            precisions.append(p)
            recalls.append(r)
            if level == LEVELS[0]:
                unmapped_pred += pred_unknown
                unmapped_ref += ref_unknown
        precision, recall = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        levels[level] = LevelScore(precision, recall, f1)
    return OpenVocabResult(
        wheel_version=wheel.version,
        levels=levels,
        samples=len(references),
        unmapped_predicted=unmapped_pred,
        unmapped_reference=unmapped_ref,
        empty_predictions=sum(not p for p in predictions),
    )
