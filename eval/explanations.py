"""Scoring explanations: EMER clue and label overlap by an LLM judge, the offline judge, CoT checks.

Only samples whose reference has reasoning or clues are scored, and only predictions with text;
a sample without one is counted, not scored as zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from emoreason.eval.predictions import Aligned, Prediction
from emoreason.schema import Sample


def reference_explanation(sample: Sample) -> str | None:
    targets = sample.targets
    if targets is None:
        return None
    parts = [f"{source}: {clue}" for source, clue in (targets.clues or {}).items()]
    if targets.reasoning:
        parts.append(targets.reasoning)
    return "\n".join(parts) or None


def reference_labels(sample: Sample) -> str | None:
    targets = sample.targets
    if targets is None:
        return None
    labels = list(targets.open_vocab or []) or ([targets.emotion] if targets.emotion else [])
    return ", ".join(labels) or None


def explained_pairs(aligned: Aligned) -> list[tuple[Sample, Prediction]]:
    return [
        (s, p) for s, p in zip(aligned.samples, aligned.predictions)
        if reference_explanation(s) is not None and p is not None and p.error is None and p.text
    ]


def llm_judge_results(aligned: Aligned, judge, progress: bool = True) -> dict:
    from emoreason.eval.judge_client import summarise

    pairs = explained_pairs(aligned)
    clue_items = [{"reference": reference_explanation(s), "prediction": p.text} for s, p in pairs]
    label_pairs = [(s, p) for s, p in pairs if reference_labels(s)]
    label_items = [{"reference_labels": reference_labels(s), "prediction": p.text} for s, p in label_pairs]
    clue = judge.score("clue_overlap", clue_items, progress=progress)
    label = judge.score("label_overlap", label_items, progress=progress)
    unscored = [
        {"id": s.id, "template": template, "fault": score.fault, "reason": score.error}
        for template, judged, scored_pairs in (("clue_overlap", clue, pairs), ("label_overlap", label, label_pairs))
        for (s, _), score in zip(scored_pairs, judged) if score.score is None
    ]
    return {
        "judge_model": judge.model,
        "prompt_version": judge.prompt_version,
        "clue_overlap": summarise(clue),
        "label_overlap": summarise(label),
        "not_scored": len(aligned.samples) - len(pairs),
        "unscored_items": unscored,
        "calls": judge.stats.calls,
        "cache_hits": judge.stats.cache_hits,
        "retries": judge.stats.retries,
        "timeout_s": judge.timeout,
        "max_retries": judge.max_retries,
    }


def offline_judge_results(aligned: Aligned) -> dict:
    from emoreason.eval.offline_judge import OfflineJudge

    pairs = explained_pairs(aligned)
    scores = OfflineJudge().score([p.text for _, p in pairs], [reference_explanation(s) for s, _ in pairs])
    return scores.summary() | {"not_scored": len(aligned.samples) - len(pairs)}


def cot_results(aligned: Aligned, labels: Sequence[str] | None = None) -> dict:
    """CoT structure, consistency (conclusions read against `labels`, else as open vocabulary) and grounding."""
    from emoreason.eval.cot import sample_modalities, score_cot, summarise

    scored = [
        score_cot(p.text, sample_modalities(s), labels or None)
        for s, p in zip(aligned.samples, aligned.predictions)
        if p is not None and p.error is None and p.text
    ]
    return summarise(scored)
