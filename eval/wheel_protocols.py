"""MER2025 track 2 / MER-UniBench scores on the official emotion wheels: EW-based open-vocabulary F and hit rate.

Definitions (MERTools, MER2025/MER2025_Track23/my_affectgpt/evaluation/wheel.py and AffectGPT's
wheel.py):

- `calculate_openset_overlap_rate`: per sample, map both label sets onto one wheel and level
  (`OfficialWheels.map_labels`); skip the sample when the reference maps to nothing; an empty
  mapped prediction scores precision 0 and recall 0; else precision = |ref & pred| / |pred|,
  recall = |ref & pred| / |ref|. Both are averaged over the samples kept.
- `wheel_metric_calculation`: per wheel, F = 2PR / (P + R); the reported [F, P, R] is the mean over
  the wheels of each; level 1 and level 2 separately. MER2025 track 2 ranks by the mean of the
  level-1 and level-2 F (evaluation.py, `__main__`).
- `calculate_openset_onehot_hitrate`: a discrete reference label mapped at level 1; per sample the
  hit is |ref & pred|, averaged over samples whose reference maps; `hitrate_metric_calculation`
  averages over the wheels.

One deliberate difference: where P + R = 0 the official code divides 0 by 0 (NaN); here F is 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from emoreason.eval.label_lists import parse_label_list
from emoreason.eval.official_wheels import LEVELS, OfficialWheels


@dataclasses.dataclass
class WheelLevelScore:
    precision: float
    recall: float
    f1: float
    samples: int
    """Samples kept (their reference maps onto this wheel and level)."""


@dataclasses.dataclass
class EWResult:
    protocol: str
    wheel_source: dict[str, str]
    per_wheel: dict[str, dict[str, WheelLevelScore]]
    """wheel -> level -> score."""
    levels: dict[str, dict[str, float]]
    """level -> five-wheel mean of f1, precision and recall."""
    score: float
    """Mean of the level-1 and level-2 F: what the MER2025 track-2 leaderboard ranks by."""
    samples: int
    skipped_references: int
    """Samples whose reference maps to nothing on some wheel (skipped there, as the official code does)."""
    dropped_predicted_words: int
    """Predicted words that map onto no class of the first wheel (dropped, as the official code does)."""
    empty_predictions: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _parsed(labels) -> tuple[str, ...]:
    """The official per-sample preparation: parse, then lower-case and strip each label."""
    return tuple(label.lower().strip() for label in parse_label_list(labels))


def _mapper(wheels: OfficialWheels, wheel: str, level: str):
    """words -> their set of classes on one wheel and level (unmapped words dropped), memoised per word."""
    memo: dict[str, str] = {}

    def classes(words: tuple[str, ...]) -> set[str]:
        out = set()
        for word in words:
            mapped = memo.get(word)
            if mapped is None:
                mapped = memo[word] = wheels.map_word(word, wheel, level)
            if mapped:
                out.add(mapped)
        return out

    return classes


def overlap_rate(wheels: OfficialWheels, references: Sequence, predictions: Sequence, wheel: str, level: str) -> WheelLevelScore:
    return _overlap(wheels, [_parsed(r) for r in references], [_parsed(p) for p in predictions], wheel, level)


def _overlap(wheels: OfficialWheels, references: list[tuple[str, ...]], predictions: list[tuple[str, ...]], wheel: str, level: str) -> WheelLevelScore:
    classes = _mapper(wheels, wheel, level)
    precisions, recalls = [], []
    for reference, prediction in zip(references, predictions):
        ref = classes(reference)
        if not ref:
            continue
        pred = classes(prediction)
        hits = len(ref & pred)
        precisions.append(hits / len(pred) if pred else 0.0)
        recalls.append(hits / len(ref) if pred else 0.0)
    if not precisions:
        raise ValueError(f"no reference maps onto {wheel} {level} of {wheels.folder}: the score is undefined")
    precision, recall = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return WheelLevelScore(precision, recall, _f1(precision, recall), len(precisions))


def ew_scores(wheels: OfficialWheels, references: Sequence, predictions: Sequence, protocol: str = "mer2025-track2") -> EWResult:
    """`references[i]` / `predictions[i]`: a sample's labels, as a list or the official string form."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference label sets but {len(predictions)} predicted ones")
    if not references:
        raise ValueError("no samples to score")
    refs, preds = [_parsed(r) for r in references], [_parsed(p) for p in predictions]
    per_wheel = {w: {level: _overlap(wheels, refs, preds, w, level) for level in LEVELS} for w in wheels.wheel_names()}
    levels = {
        level: {k: sum(getattr(per_wheel[w][level], k) for w in per_wheel) / len(per_wheel) for k in ("f1", "precision", "recall")}
        for level in LEVELS
    }
    level1 = {w: _mapper(wheels, w, LEVELS[0]) for w in per_wheel}
    first = level1[wheels.wheel_names()[0]]
    return EWResult(
        protocol=protocol,
        wheel_source=dict(wheels.sha256),
        per_wheel=per_wheel,
        levels=levels,
        score=(levels["level1"]["f1"] + levels["level2"]["f1"]) / 2,
        samples=len(references),
        skipped_references=sum(1 for ref in refs if any(not classes(ref) for classes in level1.values())),
        dropped_predicted_words=sum(1 for pred in preds for word in pred if not first((word,))),
        empty_predictions=sum(1 for pred in preds if not pred),
    )


def hit_rate(wheels: OfficialWheels, references: Sequence[str], predictions: Sequence) -> dict:
    """MER-UniBench hit rate of discrete reference labels, per wheel (level 1) and the wheel mean."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    per_wheel: dict[str, dict] = {}
    for wheel in wheels.wheel_names():
        hits = []
        for reference, prediction in zip(references, predictions):
            ref = wheels.map_labels([reference], wheel, "level1")
            if not ref:
                continue
            hits.append(len(ref & wheels.map_labels(prediction, wheel, "level1")))
        if not hits:
            raise ValueError(f"no reference label maps onto {wheel} level1 of {wheels.folder}: the hit rate is undefined")
        per_wheel[wheel] = {"hit_rate": sum(hits) / len(hits), "samples": len(hits)}
    return {
        "protocol": "mer-unibench-hitrate",
        "hit_rate": sum(w["hit_rate"] for w in per_wheel.values()) / len(per_wheel),
        "per_wheel": per_wheel,
        "samples": len(references),
        "wheel_source": dict(wheels.sha256),
    }
