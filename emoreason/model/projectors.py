"""Per-modality projectors: encoder feature tokens -> LLM embedding tokens.

Notation: b batch, t input feature tokens, d_in encoder width, h projector width, K output tokens
of a pooling projector, d_llm LLM hidden size.

Every projector maps (features [b, t, d_in], mask [b, t]) -> (tokens [b, t', d_llm], out_mask [b, t'])
with True = a real token. "linear" and "mlp" keep t' = t; "attn_pool", "resampler" and "qformer" give
t' = K, or no real token at all (out_mask all False) for an item with no real input token;
"token_concat" gives t' = (t - drop_prefix_tokens) / concat (qformer.py and token_concat.py). Positions with a
False out_mask are zeros, and padded input positions never reach the output: the processor reserves
`num_output_tokens(n)` positions per item and the model scatters `tokens[out_mask]` into them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emoreason.config import check

PROJECTOR_KINDS: tuple[str, ...] = ("linear", "mlp", "attn_pool", "resampler", "qformer", "token_concat")
_POOLING_KINDS: frozenset[str] = frozenset({"attn_pool", "resampler", "qformer"})
# Kinds whose token count depends on where each item's real tokens start, so they can drop a prefix.
_PREFIX_KINDS: frozenset[str] = frozenset({"qformer", "token_concat"})


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@dataclass
class ProjectorConfig:
    """How one modality's feature tokens become LLM tokens."""

    kind: str = "mlp"
    """One of "linear", "mlp" (Linear-GELU-Linear, LLaVA-1.5), "attn_pool" (K learned queries), "resampler"
    (perceiver resampler, Flamingo), "qformer" (BLIP-2 Q-Former: K learned queries cross-attending to the
    tokens, then a Linear), "token_concat" (`concat` adjacent tokens concatenated, then a Linear)."""
    num_tokens: int | None = None
    """Output tokens K for "attn_pool", "resampler" and "qformer" (required there); null for the other
    kinds, whose token count follows the input's."""
    hidden_size: int | None = None
    """Internal width of "mlp", "attn_pool", "resampler" and "qformer"; null = the LLM hidden size."""
    depth: int = 2
    """Linear layers of "mlp", blocks of "resampler", or layers of "qformer"."""
    num_heads: int = 4
    """Attention heads of "attn_pool", "resampler" and "qformer"; must divide the internal width."""
    concat: int | None = None
    """Adjacent tokens concatenated into one by "token_concat" (required there; Emotion-LLaMA: 4)."""
    drop_prefix_tokens: int = 0
    """Leading tokens of each item dropped before "token_concat" or "qformer" (1 drops a ViT's CLS)."""
    cross_attention_frequency: int = 1
    """"qformer": a cross-attention to the input tokens every this many layers (BLIP-2 2, Video-LLaMA 1)."""
    max_positions: int | None = None
    """"qformer": learned position embeddings added to the first this many input tokens (Video-LLaMA's
    frame positions); null adds none. An item with more input tokens is an error."""

    def __post_init__(self) -> None:
        check(self.kind in PROJECTOR_KINDS, "kind", f"one of {list(PROJECTOR_KINDS)}", self.kind)
        if self.kind in _POOLING_KINDS:
            check(_is_int(self.num_tokens, 1), "num_tokens", f"an integer >= 1 for kind {self.kind!r}", self.num_tokens)
        else:
            check(self.num_tokens is None, "num_tokens",
                  f"null for kind {self.kind!r}, which keeps the input token count", self.num_tokens)
        check(self.hidden_size is None or _is_int(self.hidden_size, 1), "hidden_size", "null or an integer >= 1",
              self.hidden_size)
        check(_is_int(self.depth, 1), "depth", "an integer >= 1", self.depth)
        check(_is_int(self.num_heads, 1), "num_heads", "an integer >= 1", self.num_heads)
        if self.kind == "token_concat":
            check(_is_int(self.concat, 1), "concat", "an integer >= 1 for kind 'token_concat'", self.concat)
        else:
            check(self.concat is None, "concat", f"null for kind {self.kind!r} (only token_concat concatenates)",
                  self.concat)
        check(_is_int(self.drop_prefix_tokens, 0), "drop_prefix_tokens", "an integer >= 0", self.drop_prefix_tokens)
        check(self.drop_prefix_tokens == 0 or self.kind in _PREFIX_KINDS, "drop_prefix_tokens",
              f"0 for kind {self.kind!r} (only {sorted(_PREFIX_KINDS)} drop a prefix)", self.drop_prefix_tokens)
        check(_is_int(self.cross_attention_frequency, 1) and self.cross_attention_frequency <= self.depth,
              "cross_attention_frequency", f"an integer in [1, depth={self.depth}]", self.cross_attention_frequency)
        check(self.max_positions is None or (self.kind == "qformer" and _is_int(self.max_positions, 1)),
              "max_positions", "null, or an integer >= 1 for kind 'qformer'", self.max_positions)
        if self.kind in _POOLING_KINDS and self.hidden_size is not None:
            check(self.hidden_size % self.num_heads == 0, "num_heads",
                  f"a divisor of hidden_size {self.hidden_size}", self.num_heads)


def _zero_padding(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return tokens.masked_fill(~mask.unsqueeze(-1), 0.0)


class LinearProjector(nn.Module):
    def __init__(self, d_in: int, d_llm: int):
        super().__init__()
        self.proj = nn.Linear(d_in, d_llm)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return num_input_tokens

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _zero_padding(self.proj(features), mask), mask  # [b, t, d_llm], [b, t]


class MLPProjector(nn.Module):
    """`depth` Linear layers with GELU between them; depth 2 with h = d_llm is LLaVA-1.5's mlp2x_gelu."""

    def __init__(self, d_in: int, d_llm: int, hidden_size: int, depth: int):
        super().__init__()
        widths = [d_in] + [hidden_size] * (depth - 1) + [d_llm]
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            if i:
                layers.append(nn.GELU())
            layers.append(nn.Linear(w_in, w_out))
        self.mlp = nn.Sequential(*layers)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return num_input_tokens

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _zero_padding(self.mlp(features), mask), mask  # [b, t, d_llm], [b, t]


def masked_attention_inputs(features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(features [b, t, d] with zeroed padding, key_padding [b, t] True = ignore, has_tokens [b]).

    A softmax over keys that are all masked is NaN (forward and backward), so an item with no real
    token gets one visible zero key; the caller drops that item's output through `has_tokens`.
    """
    if features.shape[1] == 0:  # nothing in the batch: one padded zero token to attend to
        features = features.new_zeros(features.shape[0], 1, features.shape[2])
        mask = mask.new_zeros(mask.shape[0], 1)
    features = _zero_padding(features, mask)  # [b, t, d]
    has_tokens = mask.any(dim=1)  # [b]
    key_padding = ~mask  # [b, t], True = ignore
    key_padding[~has_tokens, 0] = False
    return features, key_padding, has_tokens


def _pooled_output(tokens: torch.Tensor, has_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out_mask = has_tokens.unsqueeze(1).expand(-1, tokens.shape[1])  # [b, K]
    return _zero_padding(tokens, out_mask), out_mask


class AttentionPoolProjector(nn.Module):
    """K learned queries attend over the real input tokens (width h), then a projection to d_llm."""

    def __init__(self, d_in: int, d_llm: int, num_tokens: int, hidden_size: int, num_heads: int):
        super().__init__()
        self.in_proj = nn.Linear(d_in, hidden_size)
        self.norm_inputs = nn.LayerNorm(hidden_size)
        # Kept as an int: under DeepSpeed ZeRO-3 a parameter's shape reads 0 outside forward.
        self.num_tokens = num_tokens
        self.queries = nn.Parameter(torch.randn(num_tokens, hidden_size) * 0.02)  # [K, h]
        self.attn = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.norm_out = nn.LayerNorm(hidden_size)
        self.out_proj = nn.Linear(hidden_size, d_llm)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return self.num_tokens if num_input_tokens > 0 else 0

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, key_padding, has_tokens = masked_attention_inputs(features, mask)
        inputs = self.norm_inputs(self.in_proj(features))  # [b, t, h]
        queries = self.queries.unsqueeze(0).expand(inputs.shape[0], -1, -1)  # [b, K, h]
        pooled, _ = self.attn(queries, inputs, inputs, key_padding_mask=key_padding, need_weights=False)  # [b, K, h]
        return _pooled_output(self.out_proj(self.norm_out(pooled)), has_tokens)  # [b, K, d_llm], [b, K]


class _ResamplerBlock(nn.Module):
    """Latents attend over [inputs; latents] (Flamingo), then a feed-forward; both residual."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.norm_inputs = nn.LayerNorm(hidden_size)
        self.norm_latents = nn.LayerNorm(hidden_size)
        self.attn = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True)
        self.ff = nn.Sequential(
            nn.LayerNorm(hidden_size),
            nn.Linear(hidden_size, 4 * hidden_size),
            nn.GELU(),
            nn.Linear(4 * hidden_size, hidden_size),
        )

    def forward(self, latents: torch.Tensor, inputs: torch.Tensor, key_padding: torch.Tensor) -> torch.Tensor:
        queries = self.norm_latents(latents)  # [b, K, h]
        keys = torch.cat([self.norm_inputs(inputs), queries], dim=1)  # [b, t + K, h]
        attended, _ = self.attn(queries, keys, keys, key_padding_mask=key_padding, need_weights=False)
        latents = latents + attended
        return latents + self.ff(latents)  # [b, K, h]


class ResamplerProjector(nn.Module):
    """A small perceiver resampler: K latents refined by `depth` cross-attention blocks."""

    def __init__(self, d_in: int, d_llm: int, num_tokens: int, hidden_size: int, depth: int, num_heads: int):
        super().__init__()
        self.in_proj = nn.Linear(d_in, hidden_size)
        self.num_tokens = num_tokens  # an int, not latents.shape[0]: ZeRO-3 empties parameters outside forward
        self.latents = nn.Parameter(torch.randn(num_tokens, hidden_size) * 0.02)  # [K, h]
        self.blocks = nn.ModuleList(_ResamplerBlock(hidden_size, num_heads) for _ in range(depth))
        self.norm_out = nn.LayerNorm(hidden_size)
        self.out_proj = nn.Linear(hidden_size, d_llm)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        return self.num_tokens if num_input_tokens > 0 else 0

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self.in_proj(_zero_padding(features, mask))  # [b, t, h]
        b, k = inputs.shape[0], self.num_tokens
        # The latents are keys too, so no item's keys are all masked, even with no real input token.
        key_padding = torch.cat([~mask, mask.new_zeros(b, k)], dim=1)  # [b, t + K], True = ignore
        latents = self.latents.unsqueeze(0).expand(b, -1, -1)  # [b, K, h]
        for block in self.blocks:
            latents = block(latents, inputs, key_padding)
        return _pooled_output(self.out_proj(self.norm_out(latents)), mask.any(dim=1))  # [b, K, d_llm], [b, K]


def build_projector(cfg: ProjectorConfig, d_in: int, d_llm: int) -> nn.Module:
    """The projector `cfg` describes, from encoder width d_in to LLM hidden size d_llm."""
    hidden = cfg.hidden_size or d_llm
    if cfg.kind == "token_concat":
        from emoreason.model.token_concat import TokenConcatProjector

        return TokenConcatProjector(d_in, d_llm, cfg.concat, cfg.drop_prefix_tokens)
    if cfg.kind == "linear":
        return LinearProjector(d_in, d_llm)
    if cfg.kind == "mlp":
        return MLPProjector(d_in, d_llm, hidden, cfg.depth)
    check(hidden % cfg.num_heads == 0, "num_heads", f"a divisor of the projector width {hidden}", cfg.num_heads)
    if cfg.kind == "qformer":
        from emoreason.model.qformer import QFormerProjector

        return QFormerProjector(d_in, d_llm, cfg, hidden)
    if cfg.kind == "attn_pool":
        return AttentionPoolProjector(d_in, d_llm, cfg.num_tokens, hidden, cfg.num_heads)
    return ResamplerProjector(d_in, d_llm, cfg.num_tokens, hidden, cfg.depth, cfg.num_heads)
