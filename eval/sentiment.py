"""MER-UniBench sentiment (CMU-MOSI, CMU-MOSEI, CH-SIMS, CH-SIMS v2): open labels -> polarity -> F1 and accuracy.

Official definition (AffectGPT, evaluation.py, `calculate_dimension_zeroshot`): each sample's open
labels go to an LLM (`openset_to_sentiment`) that answers positive / negative / neutral, read as
1 / -1 / 0 (any other answer counts as 0); references are the data set's sentiment scores; only
samples whose reference is non-zero are scored, as the binary task "reference > 0 vs predicted > 0"
(so a neutral prediction counts as negative): accuracy and weighted F1 (scikit-learn).

Two ways to get the polarity: `judge` (the official prompt through the judge client, temperature 0,
cached) and `lexicon`, emoreason's deterministic mode for use without an endpoint: each label is
looked up on the shipped emotion wheel; joy and love are positive, anger, sadness and fear negative
(surprise and neutral count for neither); more positive than negative labels -> positive, more
negative -> negative, else neutral.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from emoreason.eval.label_lists import format_label_list, label_problem

POLARITY = {"positive": 1, "negative": -1, "neutral": 0}
MODES = ("lexicon", "judge")
POSITIVE_PRIMARIES = {"joy", "love"}
NEGATIVE_PRIMARIES = {"anger", "sadness", "fear"}


def lexicon_polarity(labels: Sequence[str], wheel=None) -> int:
    from emoreason.eval.taxonomy import shipped_wheel

    wheel = wheel or shipped_wheel()
    balance = 0
    for label in labels:
        node = wheel.lookup(label)
        if node is not None:
            balance += (node.primary in POSITIVE_PRIMARIES) - (node.primary in NEGATIVE_PRIMARIES)
    return (balance > 0) - (balance < 0)


def parse_polarity(reply: str) -> int | None:
    """positive/negative/neutral as 1/-1/0, None for any other reply (asked again, then read as 0)."""
    word = re.sub(r"[^a-z]", "", (reply or "").strip().lower().split(".")[0])
    return POLARITY.get(word)


def judge_polarities(label_sets: Sequence[Sequence[str]], judge, progress: bool = True) -> tuple[list[int], dict]:
    items = [{"labels": format_label_list([w for w in labels if label_problem(w) is None])} for labels in label_sets]
    replies = judge.ask("openset_to_sentiment", items, parse_polarity, progress=progress)
    unread = [i for i, r in enumerate(replies) if r.value is None]
    # The official step reads any answer it cannot map as neutral (0); we do too, and count them.
    return [0 if r.value is None else int(r.value) for r in replies], {"unreadable_as_neutral": len(unread)}


def sentiment_scores(references: Sequence[float], polarities: Sequence[int]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    if len(references) != len(polarities):
        raise ValueError(f"{len(references)} sentiment references but {len(polarities)} predicted polarities")
    kept = [(r, p) for r, p in zip(references, polarities) if r != 0]
    if not kept:
        raise ValueError("every sentiment reference is 0: the non-zero binary score is undefined")
    y_true = [r > 0 for r, _ in kept]
    y_pred = [p > 0 for _, p in kept]
    return {
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted")),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "scored": len(kept),
        "zero_references_skipped": len(references) - len(kept),
    }
