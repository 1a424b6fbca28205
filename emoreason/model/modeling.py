"""EmotionLM: per-modality projectors spliced into a (LoRA-tuned) causal LM.

Notation: b batch, s sequence length, t feature tokens, d encoder width, D LLM hidden size.

The processor has already expanded each placeholder into the exact number of positions its
projector emits and tagged them in `media_ids`; `embed` projects the features and writes them into
the text embeddings with one masked_scatter per modality (torchtune's fusion pattern). A count
mismatch raises, naming the modality and both numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from emoreason.constants import MEDIA_INDEX
from emoreason.model.config import ModelConfig
from emoreason.model.landmark_attention import LandmarkRegionAttention
from emoreason.model.prefusion import PreFusion
from emoreason.model.projectors import build_projector

Features = Mapping[str, tuple[torch.Tensor, torch.Tensor]]  # modality -> ([b, t, d], mask [b, t])
EncoderInputs = Mapping[str, Sequence["torch.Tensor | None"]]
"""modality -> per sample its images [n, 3, H, W] (None where it has none), for the tuned encoders."""


def is_tuned_weight(name: str) -> bool:
    """Whether a parameter of EmotionLM can train: everything but the LLM's and the tuned encoders' base
    weights, of which only the LoRA adapters train."""
    if name.startswith(("llm.", "encoders.")):
        return "lora_" in name
    return True


class EmotionLM(nn.Module):
    def __init__(self, config: ModelConfig, llm: nn.Module, feature_dims: Mapping[str, int],
                 tuned_encoders: Mapping[str, nn.Module] | None = None):
        """tuned_encoders: modality -> TunedEncoder (emoreason.encoders.tuned) for each `train.mode: lora`
        encoder; their features are computed in forward from encoder_inputs, with grad."""
        super().__init__()
        self.model_config = config
        self.llm = llm
        self.feature_dims = dict(feature_dims)
        hidden = self.llm_config.hidden_size
        self.projectors = nn.ModuleDict({m: build_projector(config.projectors[m], feature_dims[m], hidden)
                                         for m in config.modalities if m in config.projectors})
        self.prefusion = PreFusion(config.prefusion, hidden) if config.prefusion.enabled else None
        attention = config.landmark_attention
        self.landmark_attention = LandmarkRegionAttention(attention, hidden) if attention.enabled else None
        self.encoders = nn.ModuleDict(dict(tuned_encoders or {}))

    @property
    def tuned_encoders(self) -> dict[str, nn.Module]:
        """modality -> TunedEncoder: what a Featurizer serving this model must use (Featurizer(tuned=...))."""
        return dict(self.encoders)

    @property
    def llm_config(self):
        return self.llm.config.get_text_config() if hasattr(self.llm.config, "get_text_config") else self.llm.config

    @property
    def device(self) -> torch.device:
        return next(self.projectors.parameters()).device

    def num_media_tokens(self, modality: str, num_feature_tokens: int) -> int:
        """Positions the processor must reserve for `num_feature_tokens` features of `modality` (0 for landmarks
        that only the landmark attention reads)."""
        if modality not in self.projectors:
            return 0
        return self.projectors[modality].num_output_tokens(num_feature_tokens)

    def project(self, features: Features) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """modality -> (tokens [b, t', D], mask [b, t']); adds 'fusion' when pre-fusion is on."""
        dtype = next(self.projectors.parameters()).dtype
        projected = {m: self.projectors[m](x.to(dtype), mask) for m, (x, mask) in features.items() if m in self.projectors}
        unknown = set(features) - set(self.model_config.modalities)
        if unknown:
            raise ValueError(f"features for {sorted(unknown)} but the model takes only {self.model_config.modalities}")
        queried = self.model_config.landmark_attention.modality
        if self.landmark_attention is not None and queried in projected and "landmarks" in features:
            points, frames = features["landmarks"]  # [b, f, 136], [b, f]
            projected[queried] = self.landmark_attention(*projected[queried], points.to(dtype), frames)
        if self.prefusion is not None and all(m in projected for m in self.prefusion.modalities):
            projected["fusion"] = self.prefusion({m: projected[m] for m in self.prefusion.modalities})
        return projected

    def encode_media(self, features: Features | None, encoder_inputs: EncoderInputs | None) -> Features | None:
        """`features` plus the tuned encoders' features of `encoder_inputs`, computed here with grad."""
        if not encoder_inputs:
            return features
        out = dict(features or {})
        for m, per_sample in encoder_inputs.items():
            if m not in self.encoders:
                raise ValueError(f"encoder inputs for {m}, but the model tunes no {m} encoder (it tunes {sorted(self.encoders)})")
            computed = {i: self.encoders[m](pixels) for i, pixels in enumerate(per_sample) if pixels is not None}  # [t, d] each
            if not computed:
                continue
            first = next(iter(computed.values()))
            rows = [computed.get(i, first.new_zeros(0, first.shape[-1])) for i in range(len(per_sample))]
            lengths = torch.tensor([len(r) for r in rows], device=first.device)  # [b]
            tokens = nn.utils.rnn.pad_sequence(rows, batch_first=True)  # [b, t_max, d], differentiable
            out[m] = (tokens, torch.arange(tokens.shape[1], device=first.device)[None] < lengths[:, None])  # mask [b, t_max]
        return out

    def embed(self, input_ids: torch.Tensor, media_ids: torch.Tensor, features: Features | None,
              encoder_inputs: EncoderInputs | None = None) -> torch.Tensor:
        """Text embeddings [b, s, D] with every media position replaced by its projected feature token."""
        embeds = self.llm.get_input_embeddings()(input_ids)  # [b, s, D]
        features = self.encode_media(features, encoder_inputs)
        projected = self.project(features) if features else {}
        for media, index in MEDIA_INDEX.items():
            positions = media_ids == index  # [b, s]
            num_positions = int(positions.sum())
            if media not in projected:
                if num_positions:
                    raise ValueError(f"{media}: {num_positions} placeholder positions but no {media} features were given")
                continue
            tokens, mask = projected[media]
            values = tokens[mask]  # [n, D], row-major like the positions
            if num_positions != values.shape[0]:
                raise ValueError(
                    f"{media}: {num_positions} placeholder positions but {values.shape[0]} projected feature tokens"
                )
            embeds = embeds.masked_scatter(positions.unsqueeze(-1), values.to(embeds.dtype))
        return embeds

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        media_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        features: Features | None = None,
        encoder_inputs: EncoderInputs | None = None,
        **llm_kwargs,
    ):
        """llm_kwargs go to the LLM's forward (e.g. TRL's fused_lm_head=True, which returns per-token log-probs)."""
        embeds = self.embed(input_ids, media_ids, features, encoder_inputs)
        return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, use_cache=False, **llm_kwargs)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, media_ids, features: Features | None = None, **generate_kwargs) -> torch.Tensor:
        """New token ids [b, n] (the prompt is not repeated)."""
        embeds = self.embed(input_ids, media_ids, features)
        return self.llm.generate(inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None, **kwargs) -> None:
        """Trainer calls this on the model it trains (with every_n_layers / offload since transformers 5.19);
        checkpointing lives in the LLM's layers, which get every keyword they accept (emoreason.model.checkpointing)."""
        from emoreason.model.checkpointing import enable_gradient_checkpointing

        enable_gradient_checkpointing(self.llm, gradient_checkpointing_kwargs, **kwargs)

    def gradient_checkpointing_disable(self) -> None:
        self.llm.gradient_checkpointing_disable()

    @property
    def is_gradient_checkpointing(self) -> bool:
        # TRL turns checkpointing off around generation by these two names, as on a PreTrainedModel.
        return self.llm.is_gradient_checkpointing

    def trainable_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
