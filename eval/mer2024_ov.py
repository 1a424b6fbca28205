"""The MER2024 open-vocabulary metric: an LLM groups synonyms per sample, then set accuracy and recall.

Official definition (MERTools, MER2024/main-ov.py, `generate_openset_synonym_mer2024` and
`calculate_openset_overlap_rate_mer2024`; parser `listlist_to_list` in toolkit/utils/functions.py):
per sample, the union of reference and predicted labels (lower-cased) goes to the judge
(`openset_synonym`), which answers a list of lists of synonyms; every word maps to the first word of
its group, a word in no group to itself; accuracy = |ref & pred| / |pred| (0 for an empty prediction),
recall = |ref & pred| / |ref|; both averaged over samples; the score is their mean.

emoreason sends the union sorted (the official code sends a Python set, whose order changes from run
to run), so the prompt, and the cache, are deterministic. A sample whose grouping call failed is left
unscored and counted, never scored as if no word had a synonym.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def listlist_to_list(text: str) -> list[list[str]]:
    """The official parser: split on brackets, then on quotes; pieces that are only "" or "," go."""
    groups = []
    for chunk in (c for c in re.split(r"[\[\]]", text) if c.strip() not in ("", ",")):
        groups.append([item for item in re.split("['\"]", chunk) if item.strip() not in ("", ",")])
    return groups


def parse_groups(reply: str) -> list[list[str]] | None:
    return listlist_to_list(reply) if reply and "[" in reply else None


def group_prompt_labels(reference: Sequence[str], predicted: Sequence[str]) -> str:
    return repr(sorted({w.lower() for w in reference} | {w.lower() for w in predicted}))


def set_scores(reference: Sequence[str], predicted: Sequence[str], groups: list[list[str]]) -> tuple[float, float]:
    synonym = {word: group[0] for group in groups for word in group}
    ref = {synonym.get(w.lower(), w.lower()) for w in reference}
    pred = {synonym.get(w.lower(), w.lower()) for w in predicted}
    if not pred:
        return 0.0, 0.0
    return len(ref & pred) / len(pred), len(ref & pred) / len(ref)


def mer2024_ov(references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], judge, progress: bool = True) -> dict:
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference label sets but {len(predictions)} predicted ones")
    pairs = [(r, p) for r, p in zip(references, predictions) if r]
    if not pairs:
        raise ValueError("no sample has reference labels: the MER2024 open-vocabulary score is undefined")
    replies = judge.ask("openset_synonym", [{"labels": group_prompt_labels(r, p)} for r, p in pairs], parse_groups, progress=progress)
    accuracy, recall, failed = [], [], 0
    for (ref, pred), reply in zip(pairs, replies):
        if reply.value is None:
            failed += 1
            continue
        a, r = set_scores(ref, pred, reply.value)
        accuracy.append(a)
        recall.append(r)
    if not accuracy:
        return {"protocol": "mer2024-ov", "score": None, "scored": 0, "failed": failed}
    mean_accuracy, mean_recall = sum(accuracy) / len(accuracy), sum(recall) / len(recall)
    return {
        "protocol": "mer2024-ov",
        "set_accuracy": mean_accuracy,
        "set_recall": mean_recall,
        "score": (mean_accuracy + mean_recall) / 2,
        "scored": len(accuracy),
        "failed": failed,
        "judge_model": judge.model,
        "prompt_version": judge.prompt_version,
    }
