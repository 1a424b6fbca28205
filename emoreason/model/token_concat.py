"""Token-concat connector (Emotion-LLaMA): `concat` adjacent feature tokens become one, then a Linear.

Notation: b batch, t input tokens, p dropped prefix tokens, k = concat, d_in encoder width, d_llm LLM
hidden size.

    features [b, t, d_in] -> drop p leading tokens -> [b, (t - p) / k, k * d_in] -> Linear -> [b, (t - p) / k, d_llm]

Emotion-LLaMA's EVA-CLIP-g at 448 px gives 1 CLS + 1024 patch tokens of width 1408: p = 1, k = 4 gives
256 tokens of width 5632. The k tokens of a group are concatenated in order (row-major, as
`view(b, t / k, k * d)` does), so a group is k neighbours in the encoder's raster order. An item's
real token count minus p must be a multiple of k; anything else is an error, never a silent drop.
"""

from __future__ import annotations

import torch
from torch import nn

from emoreason.model.projectors import _zero_padding


def drop_prefix(features: torch.Tensor, mask: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [b, t - count, d], mask [b, t - count]) without each item's first `count` tokens.

    Real tokens are left-aligned, so the prefix sits at positions [0, count) of every item that has
    tokens; an item with no real token stays empty.
    """
    if count == 0:
        return features, mask
    return features[:, count:], mask[:, count:]


def concat_count_error(num_tokens: int, concat: int, drop: int) -> str | None:
    """Why `num_tokens` real tokens cannot be concatenated `concat` at a time after dropping `drop`, or None."""
    if num_tokens == 0:
        return None
    kept = num_tokens - drop
    if kept > 0 and kept % concat == 0:
        return None
    hint = " (a ViT adds one CLS token before its patches: drop it with drop_prefix_tokens=1)" \
        if drop == 0 and num_tokens % concat == 1 else ""
    return (f"key 'concat': {num_tokens} input tokens minus drop_prefix_tokens={drop} is {kept}, "
            f"expected a positive multiple of concat={concat}{hint}")


class TokenConcatProjector(nn.Module):
    def __init__(self, d_in: int, d_llm: int, concat: int, drop_prefix_tokens: int = 0):
        super().__init__()
        self.concat = concat
        self.drop_prefix_tokens = drop_prefix_tokens
        self.proj = nn.Linear(concat * d_in, d_llm)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        error = concat_count_error(num_input_tokens, self.concat, self.drop_prefix_tokens)
        if error:
            raise ValueError(f"token_concat projector: {error}")
        return 0 if num_input_tokens == 0 else (num_input_tokens - self.drop_prefix_tokens) // self.concat

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for count in mask.sum(dim=1).tolist():  # the same check the processor ran, so a bypass cannot slip by
            self.num_output_tokens(int(count))
        features, mask = drop_prefix(features, mask, self.drop_prefix_tokens)
        features = _zero_padding(features, mask)  # [b, t, d_in]
        b, t, d = features.shape
        pad = -t % self.concat  # the batch's padded length need not be a multiple of k; items' real counts are
        if pad:
            features = torch.cat([features, features.new_zeros(b, pad, d)], dim=1)
            mask = torch.cat([mask, mask.new_zeros(b, pad)], dim=1)
        groups = features.reshape(b, -1, self.concat * d)  # [b, t / k, k * d_in]
        # Every item's real count is a multiple of k, so a group is all real or all padding.
        out_mask = mask.reshape(b, -1, self.concat).all(dim=2)  # [b, t / k]
        return _zero_padding(self.proj(groups), out_mask), out_mask  # [b, t / k, d_llm], [b, t / k]
