"""Encoder families by transformers model_type: the inputs each takes, its prefix tokens and feature width."""

from __future__ import annotations

from transformers import PreTrainedConfig

# transformers model_type -> family; the family fixes the inputs the model takes.
FAMILIES: dict[str, str] = {
    "hubert": "waveform",
    "wav2vec2": "waveform",
    "whisper": "whisper",
    "vit": "image",
    "vit_mae": "image",
    "clip": "image",
    "clip_vision_model": "image",
    "dinov2": "image",
    "siglip": "image",
    "siglip_vision_model": "image",
    "videomae": "video",
}
# family -> the input it encodes, as error messages name it
FAMILY_INPUT: dict[str, str] = {"waveform": "audio", "whisper": "audio", "image": "images", "video": "video"}

# Full image-text checkpoints: only their vision tower is run, and its config describes it.
DUAL_TOWER_TYPES: frozenset[str] = frozenset({"clip", "siglip"})
# SigLIP pools with an attention head instead of a CLS token; audio models and VideoMAE have none either.
_NO_PREFIX_TYPES: frozenset[str] = frozenset({"siglip", "siglip_vision_model"})
# Checkpoints whose image embedding (CLIP: pooled CLS through visual_projection; SigLIP: the attention-
# pooled head) `get_image_features` returns, for encoder output "image_features".
IMAGE_FEATURE_TYPES: frozenset[str] = frozenset({"clip", "siglip"})


def prefix_tokens(model_type: str) -> int:
    """Tokens before the patches in the hidden states: the CLS of ViT-style image encoders."""
    if FAMILIES[model_type] != "image" or model_type in _NO_PREFIX_TYPES:
        return 0
    return 1


def tower_config(config: PreTrainedConfig) -> PreTrainedConfig:
    """The config of the part that is run: the vision tower of an image-text checkpoint, else the config."""
    return config.vision_config if config.model_type in DUAL_TOWER_TYPES else config


def feature_width(config: PreTrainedConfig, output: str = "hidden") -> int:
    """Width d of each feature token for encoder `output` ("hidden" or "image_features")."""
    if output == "image_features" and config.model_type == "clip":
        return int(config.projection_dim)
    tower = getattr(config, "vision_config", None) or config  # any image-text checkpoint: its vision tower
    return int(getattr(tower, "hidden_size", None) or tower.d_model)
