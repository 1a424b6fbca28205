"""Reduce an encoder's token sequence to the number of feature tokens a pooling spec asks for."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from emoreason.encoders.config import parse_pooling


def pool_tokens(hidden: torch.Tensor, pooling: str) -> torch.Tensor:
    """[n, t, d] -> [n, t', d]: "mean" and "cls" give t' = 1, "tokens:K" gives K, "none" keeps t.

    "patches" keeps t too: the caller has already cut the prefix (CLS) tokens it excludes.
    """
    mode, k = parse_pooling(pooling)
    if hidden.ndim != 3 or hidden.shape[1] == 0:
        raise ValueError(f"pool_tokens: expected hidden states [n, t, d] with t >= 1, got {tuple(hidden.shape)}")
    if mode in ("none", "patches"):
        return hidden
    if mode == "cls":
        return hidden[:, :1]  # [n, 1, d]
    if mode == "mean":
        return hidden.mean(dim=1, keepdim=True)  # [n, 1, d]
    # Adaptive pooling splits t into K near-equal spans; with t < K spans repeat tokens, so K always holds.
    return F.adaptive_avg_pool1d(hidden.transpose(1, 2), k).transpose(1, 2)  # [n, d, t] -> [n, K, d]
