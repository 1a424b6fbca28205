"""How labels are read out of a prediction's free text: the extraction modes results are flagged with.

Open labels (lists of emotion words):
- `split` (default): the prediction's `open_vocab` list, else its text split on commas, `and`, ...;
- `judge`: an LLM judge turns the text into a list, the official `reason_to_openset` step
  (MERTools, MER2025/MER2025_Track23/toolkit/utils/qwen.py, `reason_to_openset_qwen`, prompt set
  `mer_unibench_v1`). Replies are cached per item as they arrive, so a killed run resumes with no
  repeated call for an item already extracted.

Discrete labels:
- `emoreason` (default): the one label the answer names as a whole word, else unmatched;
- `emotion-llama`: Emotion-LLaMA's eval_emotion.py rule, for comparing with its published numbers:
  the answer's last space-separated token, and any token outside the label set becomes the named
  fallback class (`neutral` there).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from emoreason.eval.label_lists import parse_label_list
from emoreason.eval.predictions import Prediction, predicted_open_vocab

OPEN_MODES = ("split", "judge")
DISCRETE_MODES = ("emoreason", "emotion-llama")
EXTRACTION_PROMPTS = "mer_unibench_v1"
_PREFIXES = re.compile(r"^\s*(?:output|input)?\s*[:：]?\s*", re.IGNORECASE)


def emotion_llama_label(text: str | None, labels: Sequence[str], fallback: str) -> str:
    """`answers[j].split(" ")[-1]`, outside `labels` -> `fallback` (Emotion-LLaMA, eval_emotion.py)."""
    token = (text or "").split(" ")[-1]
    return token if token in labels else fallback


def parse_openset_reply(reply: str) -> list[str] | None:
    """The label list of an extraction reply (prefixes such as "Output:" and newlines dropped, as the
    official post-processing does); None for an empty reply."""
    text = _PREFIXES.sub("", (reply or "").replace("\n", "")).strip()
    if not text:
        return None
    return parse_label_list(text)


def judge_open_labels(predictions: Sequence[Prediction | None], judge, progress: bool = True) -> tuple[list[list[str]], dict]:
    """(labels per prediction, extraction report); a prediction without text, or whose extraction
    failed, has no labels and is counted."""
    texts = [p.text if p is not None and p.error is None and p.text else None for p in predictions]
    asked = [i for i, t in enumerate(texts) if t is not None]
    replies = judge.ask("reason_to_openset", [{"reason": texts[i]} for i in asked], parse_openset_reply, progress=progress)
    labels: list[list[str]] = [[] for _ in predictions]
    faults = []
    for i, reply in zip(asked, replies):
        if reply.value is None:
            faults.append({"index": i, "id": predictions[i].id, "reason": reply.error})
        else:
            labels[i] = list(reply.value)
    report = {
        "mode": "judge",
        "judge_model": judge.model,
        "prompt_version": judge.prompt_version,
        "extracted": len(asked) - len(faults),
        "failed": len(faults),
        "without_text": len(texts) - len(asked),
        "unextracted_items": [{"id": f["id"], "reason": f["reason"]} for f in faults],
    }
    return labels, report


def split_open_labels(predictions: Sequence[Prediction | None]) -> tuple[list[list[str]], dict]:
    return [predicted_open_vocab(p) for p in predictions], {"mode": "split"}
