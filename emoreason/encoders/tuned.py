"""An image encoder tuned with LoRA inside the projector model's graph (`encoders.<m>.train.mode: lora`).

ExpLLM tunes its vision encoder with LoRA. Such an encoder's features change every step, so they are
never cached: training decodes the media (Featurizer.decode) and runs the image processor in the
dataset (`FrozenEncoder.pixel_values`), and EmotionLM's forward runs the encoder with grad
(`FrozenEncoder.image_tokens`, the same code `encode_images` runs for a frozen encoder). Serving
hands the same module to the one Featurizer (`Featurizer(..., tuned=model.tuned_encoders)`), so a
served clip gets the features training computed for it.

The module owns the encoder's weights with peft adapters injected in place (the FrozenEncoder's
methods run through them); only the adapters train and only they are saved (emoreason.model.loading).
Image encoders only (the face, frame and frame_cls modalities): the token count of a batch of images
follows from its pixel size alone, which the processor needs before the forward pass.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from emoreason.config import ConfigError
from emoreason.encoders.config import EncoderConfig, tunable_problem
from emoreason.lora_targets import match_lora_targets

def round_like_cache(features: torch.Tensor) -> torch.Tensor:
    """The fp16 value the cache would store, in the input's dtype, with the gradient of the identity.

    Frozen features reach the projectors rounded to fp16; a tuned encoder's must too, or serving (which
    rounds in the Featurizer) would see other values than training. A plain cast would also round the
    gradient to fp16, where small values underflow; x + (round(x) - x) is exactly round(x) in fp32
    (the difference is exact), and its gradient is the identity's.
    """
    return features + (features.to(torch.float16).to(features.dtype) - features).detach()


def lora_target_names(model: nn.Module, backbone: nn.Module, modality: str, cfg: EncoderConfig,
                      key_prefix: str = "model.") -> list[str]:
    """Full names (in `model`) of the backbone's linear layers that get adapters; ConfigError naming
    `<prefix>encoders.<m>.train.lora_targets` for a target matching none (emoreason.lora_targets)."""
    modules = dict(model.named_modules())
    prefix = next(name for name, module in modules.items() if module is backbone)
    linears = [name for name, module in modules.items() if isinstance(module, nn.Linear)
               and (not prefix or name.startswith(prefix + "."))]
    return match_lora_targets(linears, cfg.train.lora_targets, f"{key_prefix}encoders.{modality}.train",
                              f"the {modality} encoder {cfg.model}")


def check_lora_targets(modality: str, cfg: EncoderConfig, key_prefix: str = "model.") -> None:
    """lora_target_names on a weightless (meta-device) copy of the encoder: the check before any weights load."""
    from transformers import AutoConfig, AutoModel

    from emoreason.encoders.frozen import select_backbone

    config = AutoConfig.from_pretrained(cfg.model, trust_remote_code=cfg.trust_remote_code)
    with torch.device("meta"):
        skeleton = AutoModel.from_config(config, trust_remote_code=cfg.trust_remote_code)
    lora_target_names(skeleton, select_backbone(skeleton, config.model_type), modality, cfg, key_prefix)


class TunedEncoder(nn.Module):
    """A FrozenEncoder whose linear layers carry trainable LoRA adapters; the base weights stay fixed."""

    def __init__(self, modality: str, cfg: EncoderConfig, key_prefix: str = "model."):
        super().__init__()
        from peft import LoraConfig, get_peft_model

        from emoreason.encoders.frozen import FrozenEncoder
        from emoreason.hf_quiet import quiet_hf_progress

        problem = tunable_problem(modality, cfg)
        if problem:
            raise ConfigError(f"key '{key_prefix}encoders.{modality}.train.mode': {problem}")
        self.modality = modality
        with quiet_hf_progress():
            # Its own copy, never load_encoder's shared one: the adapters go into these weights.
            encoder = FrozenEncoder(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train)))
        targets = lora_target_names(encoder._model, encoder._backbone, modality, cfg, key_prefix)
        lora = LoraConfig(r=cfg.train.r, lora_alpha=cfg.train.alpha, lora_dropout=cfg.train.dropout,
                          target_modules=targets, bias="none")
        # peft injects its layers into encoder._model in place, so the FrozenEncoder's methods run through them.
        self.peft = get_peft_model(encoder._model, lora)
        self.encoder = encoder  # not a Module: its weights are registered once, through self.peft
        self.train(False)

    @property
    def cfg(self) -> EncoderConfig:
        return self.encoder.cfg

    def pixel_values(self, images: np.ndarray) -> torch.Tensor:
        """[n, h, w, 3] uint8 -> [n, 3, H, W]: the dataset's half (CPU, no weights)."""
        return self.encoder.pixel_values(images)

    def num_tokens(self, pixels: torch.Tensor) -> int:
        """Feature tokens of one sample's images [n, 3, H, W], before any forward pass."""
        return len(pixels) * self.encoder.tokens_per_image(pixels.shape[-2], pixels.shape[-1])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """One sample's images [n, 3, H, W] -> its features [n * k, d], fp16 values (round_like_cache)."""
        return round_like_cache(self.encoder.image_tokens(pixels).flatten(0, 1))  # [n, k, d] -> [n * k, d]

    def adapter_state(self, state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """peft's adapter state (keys as peft saves them); state_dict: this module's, as gathered elsewhere."""
        from peft import get_peft_model_state_dict

        if state_dict is not None:
            state_dict = {k.removeprefix("peft."): v for k, v in state_dict.items() if k.startswith("peft.")}
        return get_peft_model_state_dict(self.peft, state_dict=state_dict)

    def load_adapter_state(self, state: dict[str, torch.Tensor], source: str) -> None:
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(self.peft, state)
        if result.unexpected_keys:
            raise ValueError(f"{source}: adapters {result.unexpected_keys[:5]} match no LoRA layer of the {self.modality} "
                             "encoder (were they trained with other lora_targets?)")

    def merged(self) -> nn.Module:
        """The encoder checkpoint with the adapters merged into its weights (this module is consumed)."""
        return self.peft.merge_and_unload()
