"""Field metrics beyond single-label classification: AU F1, micro-F1 of label sets, ROUGE-L, 5-fold UAR/WAR.

- AU F1: facial action units as sets of codes ("AU6", "au 12" and "12" are all AU12); per sample
  the set F1 2|R & P| / (|R| + |P|) (1 when both are empty), averaged over samples, beside the
  micro F1 over all AU occurrences.
- micro-F1 of multi-label outputs: 2 TP / (2 TP + FP + FN) summed over samples and labels
  (scikit-learn's `f1_score(average="micro")` on binarised sets).
- ROUGE-L of explanations: Google's `rouge-score` package (`RougeScorer(["rougeL"])`), mean
  precision, recall and F over samples.
- DFEW / MAFW 5-fold: UAR and WAR per fold (each fold its own test set), and their unweighted
  means, as both papers report them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

_AU = re.compile(r"\bAU\s*(\d{1,2})\b", re.IGNORECASE)
_BARE = re.compile(r"^\s*(\d{1,2})\s*$")


def au_codes(value: str | Iterable[str]) -> set[str]:
    """AU codes named in a text ("AU6 and AU12") or a list (["AU06", "12"]), normalised to "AU<n>"."""
    parts = [value] if isinstance(value, str) else [str(v) for v in value]
    codes: set[str] = set()
    for part in parts:
        numbers = _AU.findall(part) or ([m.group(1)] if (m := _BARE.match(part)) and not isinstance(value, str) else [])
        codes |= {f"AU{int(n)}" for n in numbers}
    return codes


def set_f1(reference: set, predicted: set) -> float:
    if not reference and not predicted:
        return 1.0
    return 2 * len(reference & predicted) / (len(reference) + len(predicted))


def micro_f1(references: Sequence[Iterable[str]], predictions: Sequence[Iterable[str]]) -> float:
    """Micro-averaged F1 of label sets, through scikit-learn."""
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import MultiLabelBinarizer

    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference sets but {len(predictions)} predicted ones")
    if not references:
        raise ValueError("no samples to score")
    refs, preds = [set(r) for r in references], [set(p) for p in predictions]
    binarizer = MultiLabelBinarizer(classes=sorted(set().union(*refs, *preds)))
    return float(f1_score(binarizer.fit_transform(refs), binarizer.transform(preds), average="micro", zero_division=0))


def au_f1(references: Sequence[str | Iterable[str]], predictions: Sequence[str | Iterable[str]]) -> dict:
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} AU references but {len(predictions)} predictions")
    if not references:
        raise ValueError("no samples to score")
    refs, preds = [au_codes(r) for r in references], [au_codes(p) for p in predictions]
    per_sample = [set_f1(r, p) for r, p in zip(refs, preds)]
    return {"au_f1": sum(per_sample) / len(per_sample), "au_micro_f1": micro_f1(refs, preds), "samples": len(refs)}


def rouge_l(references: Sequence[str], predictions: Sequence[str], use_stemmer: bool = False) -> dict:
    from rouge_score import rouge_scorer

    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference explanations but {len(predictions)} predicted ones")
    if not references:
        raise ValueError("no explanations to score")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    scores = [scorer.score(ref, pred)["rougeL"] for ref, pred in zip(references, predictions)]
    n = len(scores)
    return {
        "rouge_l_precision": sum(s.precision for s in scores) / n,
        "rouge_l_recall": sum(s.recall for s in scores) / n,
        "rouge_l_f": sum(s.fmeasure for s in scores) / n,
        "samples": n,
        "use_stemmer": use_stemmer,
    }


def five_fold(per_fold: Mapping[str, Mapping[str, float]]) -> dict:
    """Per-fold {"uar", "war"} -> those folds and the unweighted mean of each."""
    if not per_fold:
        raise ValueError("no folds to aggregate")
    folds = {str(k): {"uar": float(v["uar"]), "war": float(v["war"])} for k, v in sorted(per_fold.items(), key=lambda kv: str(kv[0]))}
    return {
        "folds": folds,
        "uar_mean": sum(f["uar"] for f in folds.values()) / len(folds),
        "war_mean": sum(f["war"] for f in folds.values()) / len(folds),
        "num_folds": len(folds),
    }
