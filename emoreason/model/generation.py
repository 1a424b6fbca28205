"""Greedy or sampled answers from EmotionLM for a batch of prompts (left-padded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from emoreason.model.features import collate_features
from emoreason.model.modeling import EmotionLM
from emoreason.model.processor import EmotionProcessor, EncodedConversation


def prompt_turns(turns: Sequence[Any]) -> list[Any]:
    """The conversation up to (not including) its final assistant answer."""
    turns = list(turns)
    while turns and (turns[-1]["role"] if isinstance(turns[-1], Mapping) else turns[-1].role) == "assistant":
        turns.pop()
    return turns


def left_pad(pad_id: int, encoded: Sequence[EncodedConversation]) -> dict[str, torch.Tensor]:
    """input_ids, media_ids, attention_mask [b, s], left-padded so every row ends where generation starts."""
    longest = max(len(e) for e in encoded)
    pads = [longest - len(e) for e in encoded]
    return {
        "input_ids": torch.tensor([[pad_id] * p + e.input_ids for p, e in zip(pads, encoded)]),  # [b, s]
        "media_ids": torch.tensor([[0] * p + e.media_ids for p, e in zip(pads, encoded)]),  # [b, s]
        "attention_mask": torch.tensor([[0] * p + [1] * len(e) for p, e in zip(pads, encoded)]),  # [b, s]
    }


def collate_prompts(processor: EmotionProcessor, prompts: Sequence[tuple]) -> dict:
    """Left-pad (turns, features) prompts so every row's last token is where generation starts. A prompt may carry a
    third item: its sample's text fields for a recipe's prompt template (emoreason.model.prompt_template)."""
    encoded = [processor.encode(p[0], {m: f.shape[0] for m, f in p[1].items()}, generation_prompt=True,
                                fields=p[2] if len(p) > 2 else None) for p in prompts]
    return left_pad(processor.pad_id, encoded) | {"features": collate_features([p[1] for p in prompts])}


@torch.no_grad()
def generate_texts(
    model: EmotionLM,
    processor: EmotionProcessor,
    prompts: Sequence[tuple],
    max_new_tokens: int = 64,
    batch_size: int = 8,
    **generate_kwargs,
) -> list[str]:
    """Answer text per (turns, features[, prompt fields]) prompt; greedy unless do_sample=True is passed."""
    tokenizer = processor.tokenizer
    kwargs = {"do_sample": False, "max_new_tokens": max_new_tokens, "pad_token_id": processor.pad_id, "eos_token_id": tokenizer.eos_token_id}
    kwargs |= generate_kwargs
    model.eval()
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        batch = collate_prompts(processor, prompts[start : start + batch_size])
        device = model.device
        features = {m: (x.to(device), mask.to(device)) for m, (x, mask) in batch["features"].items()}
        new_tokens = model.generate(
            batch["input_ids"].to(device), batch["attention_mask"].to(device), batch["media_ids"].to(device), features, **kwargs
        )
        out += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [text.strip() for text in out]
