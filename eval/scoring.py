"""The offline metrics of one predictions file: what `emoreason eval` computes before any judge."""

from __future__ import annotations

from collections.abc import Sequence

from emoreason.eval.classification import classification_metrics
from emoreason.eval.open_vocab import open_vocab_metrics
from emoreason.eval.predictions import Aligned, predicted_label, predicted_open_vocab
from emoreason.eval.taxonomy import EmotionWheel
from emoreason.eval.valence import ccc, mer2023_score, mse

UNMATCHED_EXAMPLES = 5


def counts(aligned: Aligned) -> dict:
    return {
        "references": len(aligned.samples),
        "predictions": sum(p is not None for p in aligned.predictions),
        "missing": sum(p is None for p in aligned.predictions),
        "errors": sum(p is not None and p.error is not None for p in aligned.predictions),
        "extra": len(aligned.extra_ids),
    }


def score_classification(aligned: Aligned, labels: Sequence[str]) -> tuple[dict, dict] | None:
    """(classification metrics, label-extraction report) over samples with a discrete target."""
    pairs = [(s, p) for s, p in zip(aligned.samples, aligned.predictions) if s.targets and s.targets.emotion]
    if not pairs:
        return None
    predicted = [predicted_label(p, labels) for _, p in pairs]
    result = classification_metrics([s.targets.emotion for s, _ in pairs], predicted, labels)
    unanswered = [(s, p) for (s, p), label in zip(pairs, predicted) if label is None]
    report = {
        "labels": list(labels),
        "scored": len(pairs),
        "matched": len(pairs) - len(unanswered),
        "unmatched": len(unanswered),
        "unmatched_because": {
            "no_prediction": sum(p is None for _, p in unanswered),
            "error": sum(p is not None and p.error is not None for _, p in unanswered),
            "named_no_or_several_labels": sum(p is not None and p.error is None for _, p in unanswered),
        },
        "unmatched_examples": [
            {"id": s.id, "text": None if p is None else p.text} for s, p in unanswered[:UNMATCHED_EXAMPLES]
        ],
    }
    return result.to_json(), report


def score_valence(aligned: Aligned) -> dict | None:
    pairs = [(s.targets.valence, p.valence) for s, p in zip(aligned.samples, aligned.predictions)
             if s.targets and s.targets.valence is not None and p is not None and p.valence is not None]
    wanted = sum(1 for s in aligned.samples if s.targets and s.targets.valence is not None)
    if not pairs:
        return None if not wanted else {"scored": 0, "without_prediction": wanted}
    refs, preds = zip(*pairs)
    return {"mse": mse(refs, preds), "ccc": ccc(refs, preds), "scored": len(pairs), "without_prediction": wanted - len(pairs)}


def score_open_vocab(aligned: Aligned, wheel: EmotionWheel) -> dict | None:
    pairs = [(s.targets.open_vocab, p) for s, p in zip(aligned.samples, aligned.predictions) if s.targets and s.targets.open_vocab]
    if not pairs:
        return None
    result = open_vocab_metrics([ref for ref, _ in pairs], [predicted_open_vocab(p) for _, p in pairs], wheel)
    return result.to_json()


def offline_results(aligned: Aligned, labels: Sequence[str], wheel: EmotionWheel) -> dict:
    results: dict = {"counts": counts(aligned)}
    if labels and (scored := score_classification(aligned, labels)) is not None:
        results["classification"], results["label_extraction"] = scored
    if (valence := score_valence(aligned)) is not None:
        results["valence"] = valence
        if "classification" in results and "mse" in valence:
            results["mer2023_score"] = mer2023_score(results["classification"]["weighted_f1"], valence["mse"])
    if (open_vocab := score_open_vocab(aligned, wheel)) is not None:
        results["open_vocab"] = open_vocab
    return results
