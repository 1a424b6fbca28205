"""Pad a list of dataset items into one batch for EmotionLM.forward."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emoreason.constants import IGNORE_INDEX
from emoreason.model.features import collate_features


@dataclass
class EmotionCollator:
    pad_id: int

    def __call__(self, items: list[dict]) -> dict:
        longest = max(len(item["input_ids"]) for item in items)

        def pad(key: str, value: int) -> torch.Tensor:
            return torch.tensor([item[key] + [value] * (longest - len(item[key])) for item in items], dtype=torch.long)

        # Right padding: labels there are IGNORE_INDEX and the attention mask hides them.
        lengths = torch.tensor([len(item["input_ids"]) for item in items])
        batch = {
            "input_ids": pad("input_ids", self.pad_id),  # [b, s]
            "media_ids": pad("media_ids", 0),  # [b, s]
            "labels": pad("labels", IGNORE_INDEX),  # [b, s]
            "attention_mask": (torch.arange(longest)[None] < lengths[:, None]).long(),  # [b, s]
            "features": collate_features([item["features"] for item in items]),
        }
        # The tuned encoders' images [n, 3, H, W], per sample (None where absent): the model encodes them.
        tuned = sorted({m for item in items for m in item.get("encoder_inputs", {})})
        if tuned:
            batch["encoder_inputs"] = {m: [item["encoder_inputs"].get(m) for item in items] for m in tuned}
        # Ids travel with the batch so a failing step can name its samples; the trainer removes them
        # before the model's forward, which takes no such input.
        if all("sample_id" in item for item in items):
            batch["sample_ids"] = [item["sample_id"] for item in items]
        return batch
