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


def discrete_labels(aligned: Aligned, labels: Sequence[str], mode: str = "emoreason", fallback: str | None = None) -> list[str | None]:
    """Each sample's predicted label under an extraction mode (emoreason.eval.label_modes); with a
    `fallback`, an answer that names no label (or a missing or failed one) becomes that label."""
    if fallback is not None and fallback not in labels:
        raise ValueError(f"fallback label {fallback!r} is not in the label set {list(labels)}")
    if mode == "emotion-llama":
        from emoreason.eval.label_modes import emotion_llama_label

        named = fallback or "neutral"
        if named not in labels:
            raise ValueError(f"emotion-llama mode maps unknown answers to {named!r}, which is not in the label set {list(labels)}; pass --fallback-label")
        return [named if p is None or p.error is not None else emotion_llama_label(p.text, labels, named) for p in aligned.predictions]
    predicted = [predicted_label(p, labels) for p in aligned.predictions]
    return [fallback if label is None else label for label in predicted] if fallback is not None else predicted


def score_classification(
    aligned: Aligned, labels: Sequence[str], mode: str = "emoreason", fallback: str | None = None
) -> tuple[dict, dict] | None:
    """(classification metrics, label-extraction report) over samples with a discrete target."""
    everything = discrete_labels(aligned, labels, mode, fallback)
    kept = [i for i, s in enumerate(aligned.samples) if s.targets and s.targets.emotion]
    pairs = [(aligned.samples[i], aligned.predictions[i]) for i in kept]
    if not pairs:
        return None
    predicted = [everything[i] for i in kept]
    strict = [predicted_label(p, labels) for _, p in pairs]
    result = classification_metrics([s.targets.emotion for s, _ in pairs], predicted, labels)
    unanswered = [(s, p) for (s, p), label in zip(pairs, strict) if label is None]
    report = {
        "mode": mode,
        "fallback_label": fallback if mode == "emoreason" else (fallback or "neutral"),
        # How many answers the fallback (or Emotion-LLaMA's named class) turned into a label.
        "fallback_applied": sum(1 for label, final in zip(strict, predicted) if label is None and final is not None),
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


def offline_results(
    aligned: Aligned, labels: Sequence[str], wheel: EmotionWheel | None, label_mode: str = "emoreason", fallback: str | None = None
) -> dict:
    """`wheel` None skips the single-wheel open-vocabulary metric (an official wheel folder is scored
    by its protocol instead)."""
    results: dict = {"counts": counts(aligned)}
    if labels and (scored := score_classification(aligned, labels, label_mode, fallback)) is not None:
        results["classification"], results["label_extraction"] = scored
    if (valence := score_valence(aligned)) is not None:
        results["valence"] = valence
        if "classification" in results and "mse" in valence:
            score = mer2023_score(results["classification"]["weighted_f1"], valence["mse"])
            discrete = results["classification"]["total"]
            # MER2023's score is defined on every sample: over a subset it is reported only as partial.
            if valence["scored"] == discrete == len(aligned.samples):
                results["mer2023_score"] = score
            else:
                results["mer2023_score_partial"] = {"score": score, "valence_scored": valence["scored"], "samples": len(aligned.samples)}
    if wheel is not None and (open_vocab := score_open_vocab(aligned, wheel)) is not None:
        results["open_vocab"] = open_vocab
    return results
