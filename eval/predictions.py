"""Predictions JSONL against reference samples: alignment by id and explicit label extraction.

A prediction line is what `emoreason infer` writes, `{"id", "text", "label"}` or `{"id", "error"}`,
and may carry `valence` (number) and `open_vocab` (list of words). Labels are always re-extracted
from `text` against the benchmark's label set (emoreason.labels.extract_label), so a score never
depends on which tool parsed the answer; an answer naming no label, or several, stays unmatched
and is reported, never coerced to a class.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path

from emoreason.labels import extract_label
from emoreason.schema import Sample, load_samples


class PredictionError(ValueError):
    """A predictions file that cannot be read: names the file, the line and the field."""


@dataclasses.dataclass
class Prediction:
    id: str
    text: str | None = None
    label: str | None = None
    valence: float | None = None
    open_vocab: list[str] | None = None
    error: dict | None = None


@dataclasses.dataclass
class Aligned:
    """References paired with their predictions (None where a reference has no prediction line)."""

    samples: list[Sample]
    predictions: list[Prediction | None]
    extra_ids: list[str]
    """Prediction ids with no reference (reported, not scored)."""


def read_predictions(path: str | Path) -> dict[str, Prediction]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"predictions file not found: {path}")
    out: dict[str, Prediction] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PredictionError(f"{path}:{number}: not JSON ({exc.msg})") from None
            out_id = record.get("id") if isinstance(record, dict) else None
            if not isinstance(out_id, str) or not out_id:
                raise PredictionError(f"{path}:{number}: id: expected a non-empty string, got {out_id!r}")
            if out_id in out:
                raise PredictionError(f"{path}:{number}: id {out_id!r} appears twice")
            out[out_id] = _prediction(record, f"{path}:{number}")
    return out


def _prediction(record: dict, where: str) -> Prediction:
    text, valence, words = record.get("text"), record.get("valence"), record.get("open_vocab")
    if text is not None and not isinstance(text, str):
        raise PredictionError(f"{where}: text: expected a string, got {type(text).__name__}")
    if valence is not None and (isinstance(valence, bool) or not isinstance(valence, int | float)):
        raise PredictionError(f"{where}: valence: expected a number, got {valence!r}")
    if words is not None and not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
        raise PredictionError(f"{where}: open_vocab: expected a list of strings, got {words!r}")
    return Prediction(
        id=record["id"], text=text, label=record.get("label"), valence=None if valence is None else float(valence),
        open_vocab=words, error=record.get("error"),
    )


def align(references: str | Path | Sequence[Sample], predictions: dict[str, Prediction]) -> Aligned:
    samples = load_samples(references) if isinstance(references, str | Path) else list(references)
    ids = {s.id for s in samples}
    return Aligned(samples, [predictions.get(s.id) for s in samples], sorted(set(predictions) - ids))


def predicted_label(prediction: Prediction | None, labels: Sequence[str]) -> str | None:
    if prediction is None or prediction.error is not None:
        return None
    if prediction.text is not None:
        return extract_label(prediction.text, labels)
    return prediction.label if prediction.label in labels else None


_SPLIT = re.compile(r"[,;/\n]|\band\b|\bor\b")


def predicted_open_vocab(prediction: Prediction | None) -> list[str]:
    """The prediction's `open_vocab` list, else the words of its text split on commas, 'and', ..."""
    if prediction is None or prediction.error is not None:
        return []
    if prediction.open_vocab is not None:
        return prediction.open_vocab
    words = [re.sub(r"[^\w\s-]", "", w).strip().lower() for w in _SPLIT.split(prediction.text or "")]
    return list(dict.fromkeys(w for w in words if w))
