"""Q-Former connector (BLIP-2, Video-LLaMA): K learned queries cross-attend to the feature tokens.

Notation: b batch, t input tokens, d_in encoder width, h Q-Former width, K queries, d_llm LLM hidden size.

    features [b, t, d_in] (+ learned positions) --Blip2QFormerModel(queries [K, h])--> [b, K, h] --Linear--> [b, K, d_llm]

The attention layers are transformers' `Blip2QFormerModel`, not our own: the queries self-attend, and
every `cross_attention_frequency`-th layer cross-attends to the input tokens (keys and values of
width d_in, projected inside the Q-Former). Only the queries flow through it: with
`use_qformer_text_input` off the layers hold no text-branch feed-forward, as Video-LLaMA strips it.
Video-LLaMA's video Q-Former (the EMER
baseline) has 2 layers, cross-attention in each, h = 768, 32 queries and 32 frame positions; its
audio Q-Former the same with 8 queries and 8 positions.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel

from emoreason.model.projectors import ProjectorConfig, _pooled_output, masked_attention_inputs
from emoreason.model.token_concat import drop_prefix


class QFormerProjector(nn.Module):
    def __init__(self, d_in: int, d_llm: int, cfg: ProjectorConfig, hidden_size: int):
        super().__init__()
        config = Blip2QFormerConfig(
            hidden_size=hidden_size,
            num_hidden_layers=cfg.depth,
            num_attention_heads=cfg.num_heads,
            intermediate_size=4 * hidden_size,
            cross_attention_frequency=cfg.cross_attention_frequency,
            encoder_hidden_size=d_in,
            vocab_size=1,  # no text input: the Q-Former owns no embeddings, this only fills the config
        )
        self.qformer = Blip2QFormerModel(config)  # use_qformer_text_input off: no text-branch feed-forward
        self.num_tokens = cfg.num_tokens  # an int: ZeRO-3 empties parameters (queries.shape) outside forward
        self.drop_prefix_tokens = cfg.drop_prefix_tokens
        self.max_positions = cfg.max_positions
        self.queries = nn.Parameter(torch.randn(cfg.num_tokens, hidden_size) * config.initializer_range)  # [K, h]
        self.positions = nn.Embedding(cfg.max_positions, d_in) if cfg.max_positions else None
        self.out_proj = nn.Linear(hidden_size, d_llm)

    def num_output_tokens(self, num_input_tokens: int) -> int:
        kept = num_input_tokens - self.drop_prefix_tokens
        if self.max_positions is not None and kept > self.max_positions:
            raise ValueError(f"qformer projector: key 'max_positions': {kept} input tokens but position embeddings "
                             f"for only {self.max_positions}; raise max_positions or pool the encoder's tokens")
        return self.num_tokens if kept > 0 else 0

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for count in mask.sum(dim=1).tolist():
            self.num_output_tokens(int(count))
        features, mask = drop_prefix(features, mask, self.drop_prefix_tokens)
        features, key_padding, has_tokens = masked_attention_inputs(features, mask)  # [b, t, d_in]
        if self.positions is not None:
            t = min(features.shape[1], self.max_positions)  # longer padded batches: the check above saw real counts
            positions = self.positions.weight[:t].to(features.dtype)  # [t, d_in]
            features = torch.cat([features[:, :t] + positions, features[:, t:]], dim=1)
        queries = self.queries.unsqueeze(0).expand(features.shape[0], -1, -1)  # [b, K, h]
        hidden = self.qformer(
            query_embeds=queries,
            encoder_hidden_states=features,
            encoder_attention_mask=(~key_padding).long(),  # [b, t], 1 = attend
        ).last_hidden_state  # [b, K, h]
        tokens = self.out_proj(hidden.to(self.out_proj.weight.dtype))  # [b, K, d_llm]
        return _pooled_output(tokens, has_tokens)  # [b, K, d_llm], [b, K]
