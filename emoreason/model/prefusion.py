"""Optional pre-fusion (AffectGPT style): fuse audio and video tokens before the LLM sees them.

Notation: b batch, t_m projected tokens of modality m, K fused tokens, D LLM hidden size.

K learned queries attend over the concatenated real tokens of every listed modality, then an MLP
refines them. The fused tokens exist only for items that have at least one real token in every
listed modality: fusing audio with a missing video would hand the LLM an audio summary labelled as
audio-visual evidence, so such items get fused_mask all False instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from emoreason.config import check
from emoreason.constants import MODALITIES
from emoreason.model.projectors import masked_attention_inputs


@dataclass
class PrefusionConfig:
    """Whether and how to fuse several modalities' projected tokens into K extra tokens."""

    enabled: bool = False
    """Add the fused tokens; off by default."""
    num_tokens: int = 4
    """Fused tokens K per item."""
    modalities: list[str] = dataclasses.field(default_factory=lambda: ["audio", "video"])
    """Modalities fused; an item missing any of them gets no fused tokens."""
    num_heads: int = 4
    """Heads of the queries' cross-attention; must divide the LLM hidden size."""

    def __post_init__(self) -> None:
        check(isinstance(self.enabled, bool), "enabled", "true or false", self.enabled)
        check(isinstance(self.num_tokens, int) and not isinstance(self.num_tokens, bool) and self.num_tokens >= 1,
              "num_tokens", "an integer >= 1", self.num_tokens)
        check(isinstance(self.modalities, list) and len(self.modalities) >= 2
              and len(set(self.modalities)) == len(self.modalities), "modalities",
              "a list of at least two distinct modalities", self.modalities)
        for modality in self.modalities:
            check(modality in MODALITIES, "modalities", f"modalities among {list(MODALITIES)}", modality)
        check(isinstance(self.num_heads, int) and not isinstance(self.num_heads, bool) and self.num_heads >= 1,
              "num_heads", "an integer >= 1", self.num_heads)


class PreFusion(nn.Module):
    """(modality -> (tokens [b, t_m, D], mask [b, t_m])) -> (fused [b, K, D], fused_mask [b, K])."""

    def __init__(self, cfg: PrefusionConfig, d_llm: int):
        super().__init__()
        check(d_llm % cfg.num_heads == 0, "num_heads", f"a divisor of the LLM hidden size {d_llm}", cfg.num_heads)
        self.modalities = list(cfg.modalities)
        self.num_tokens = cfg.num_tokens  # an int: under ZeRO-3 queries.shape reads 0 outside forward
        self.queries = nn.Parameter(torch.randn(cfg.num_tokens, d_llm) * 0.02)  # [K, D]
        self.norm_inputs = nn.LayerNorm(d_llm)
        self.attn = nn.MultiheadAttention(d_llm, cfg.num_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(d_llm), nn.Linear(d_llm, d_llm), nn.GELU(), nn.Linear(d_llm, d_llm))

    def num_output_tokens(self, counts: Mapping[str, int]) -> int:
        """K when every fused modality has tokens in `counts` (modality -> projected token count), else 0."""
        return self.num_tokens if all(counts.get(m, 0) > 0 for m in self.modalities) else 0

    def forward(self, projected: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [m for m in self.modalities if m not in projected]
        if missing:
            raise ValueError(f"pre-fusion of {self.modalities}: no tokens given for {missing}")
        tokens = torch.cat([projected[m][0] for m in self.modalities], dim=1)  # [b, sum t_m, D]
        mask = torch.cat([projected[m][1] for m in self.modalities], dim=1)  # [b, sum t_m]
        complete = torch.stack([projected[m][1].any(dim=1) for m in self.modalities]).all(dim=0)  # [b]
        tokens, key_padding, _ = masked_attention_inputs(tokens, mask)
        inputs = self.norm_inputs(tokens)
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)  # [b, K, D]
        fused, _ = self.attn(queries, inputs, inputs, key_padding_mask=key_padding, need_weights=False)
        fused = fused + self.mlp(fused)  # [b, K, D]
        fused_mask = complete.unsqueeze(1).expand(-1, fused.shape[1])  # [b, K]
        return fused.masked_fill(~fused_mask.unsqueeze(-1), 0.0), fused_mask
