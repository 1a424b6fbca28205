"""Held-out label accuracy by greedy decoding, with the media and (as a control) without it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from emoreason.labels import extract_label
from emoreason.model.features import cached_features
from emoreason.model.generation import generate_texts, prompt_turns
from emoreason.model.modeling import EmotionLM
from emoreason.model.processor import EmotionProcessor
from emoreason.model.prompt_template import sample_prompt_fields
from emoreason.schema import Sample, load_samples


@dataclass
class HeldoutResult:
    accuracy: float
    total: int
    unmatched: int
    """Answers that named no label (or several): counted wrong, never coerced to a class."""
    predictions: list[tuple[str, str, str | None]]  # (id, answer text, parsed label)

    def to_json(self) -> dict:
        return {"accuracy": round(self.accuracy, 4), "total": self.total, "unmatched": self.unmatched}


def score_samples(
    model: EmotionLM,
    processor: EmotionProcessor,
    samples: Sequence[Sample],
    features: Callable[[Sample], dict[str, torch.Tensor]],
    labels: list[str],
    max_new_tokens: int = 8,
) -> HeldoutResult:
    """Greedy answers to each sample's prompt (its conversation without the last answer), scored against
    targets.emotion with the evaluator's label rule; samples without a conversation or an emotion are left out."""
    samples = [s for s in samples if s.conversations and s.targets and s.targets.emotion]
    prompts = [(prompt_turns(s.conversations), features(s), sample_prompt_fields(s)) for s in samples]
    texts = generate_texts(model, processor, prompts, max_new_tokens=max_new_tokens)
    parsed = [extract_label(t, labels) for t in texts]
    correct = sum(p == s.targets.emotion for p, s in zip(parsed, samples))
    return HeldoutResult(
        accuracy=correct / max(1, len(samples)),
        total=len(samples),
        unmatched=sum(p is None for p in parsed),
        predictions=[(s.id, t, p) for s, t, p in zip(samples, texts, parsed)],
    )


def heldout_accuracy(
    model: EmotionLM,
    processor: EmotionProcessor,
    samples_path: str | Path,
    labels: list[str],
    with_media: bool = True,
    max_new_tokens: int = 8,
) -> HeldoutResult:
    samples_dir = Path(samples_path).parent
    modalities = model.model_config.modalities

    def features(sample: Sample) -> dict[str, torch.Tensor]:
        return cached_features(sample, samples_dir, modalities) if with_media else {}

    return score_samples(model, processor, load_samples(samples_path), features, labels, max_new_tokens)
