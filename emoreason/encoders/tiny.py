"""Tiny random-weight encoders, saved like hub checkpoints, for tests and demos without a model hub.

Each is hidden size 32 with 2 layers, and saved with its processor so AutoModel, AutoFeatureExtractor
and AutoImageProcessor reload it offline.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers as tf

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.atomic import replace_dir
from emoreason.hf_quiet import quiet_hf_progress

_TRANSFORMER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
_VISION = dict(_TRANSFORMER, image_size=64, patch_size=16)  # 4 x 4 = 16 patches
# Strides 10 * 8 * 4 = 320 samples keep the real models' 20 ms frame rate with 3 convs instead of 7.
_WAVEFORM = dict(_TRANSFORMER, conv_dim=(16, 16, 16), conv_stride=(10, 8, 4), conv_kernel=(10, 8, 4),
                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
# Special token ids must fit the tiny vocabularies of the text parts (CLIP's text tower, Whisper's decoder).
_TOKEN_IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _waveform_processor() -> tf.Wav2Vec2FeatureExtractor:
    return tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=AUDIO_SAMPLE_RATE, padding_value=0.0,
                                       do_normalize=True, return_attention_mask=False)


def _square_processor() -> tf.ViTImageProcessorPil:
    return tf.ViTImageProcessorPil(size={"height": 64, "width": 64})


def _crop_processor(cls: type) -> tf.BaseImageProcessor:
    return cls(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})


def _clip_vision_config() -> tf.CLIPVisionConfig:
    return tf.CLIPVisionConfig(**_VISION)


def _siglip_vision_config() -> tf.SiglipVisionConfig:
    return tf.SiglipVisionConfig(**_VISION)


def _siglip_processor() -> tf.SiglipImageProcessorPil:
    return tf.SiglipImageProcessorPil(size={"height": 64, "width": 64})


# kind -> () -> (model, processor)
_BUILDERS: dict[str, Callable[[], tuple[tf.PreTrainedModel, Any]]] = {
    "hubert": lambda: (tf.HubertModel(tf.HubertConfig(**_WAVEFORM)), _waveform_processor()),
    "wav2vec2": lambda: (tf.Wav2Vec2Model(tf.Wav2Vec2Config(**_WAVEFORM)), _waveform_processor()),
    # The real 30 s window (3000 mel frames -> 1500 encoder frames), so trimming works as on real Whisper.
    "whisper": lambda: (
        tf.WhisperModel(tf.WhisperConfig(
            d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=37, decoder_ffn_dim=37, num_mel_bins=80, vocab_size=99, max_target_positions=32,
            decoder_start_token_id=1, suppress_tokens=None, begin_suppress_tokens=None, **_TOKEN_IDS)),
        tf.WhisperFeatureExtractor(feature_size=80, sampling_rate=AUDIO_SAMPLE_RATE),
    ),
    "vit": lambda: (tf.ViTModel(tf.ViTConfig(**_VISION)), _square_processor()),
    "vitmae": lambda: (
        tf.ViTMAEModel(tf.ViTMAEConfig(**_VISION, decoder_hidden_size=16, decoder_num_hidden_layers=1,
                                       decoder_num_attention_heads=2, decoder_intermediate_size=37)),
        _square_processor(),
    ),
    "clip": lambda: (
        tf.CLIPModel(tf.CLIPConfig(
            text_config=dict(_TRANSFORMER, vocab_size=99, max_position_embeddings=32, **_TOKEN_IDS),
            vision_config=_clip_vision_config().to_dict(), projection_dim=16)),
        _crop_processor(tf.CLIPImageProcessorPil),
    ),
    "clip-vision": lambda: (tf.CLIPVisionModel(_clip_vision_config()), _crop_processor(tf.CLIPImageProcessorPil)),
    # DINOv2 sizes its MLP by mlp_ratio, not intermediate_size; BitImageProcessor is its processor on the hub.
    "dinov2": lambda: (
        tf.Dinov2Model(tf.Dinov2Config(**{k: v for k, v in _VISION.items() if k != "intermediate_size"}, mlp_ratio=1)),
        _crop_processor(tf.BitImageProcessorPil),
    ),
    # SigLIP has no CLS token: its patches are pooled by an attention head.
    "siglip": lambda: (
        tf.SiglipModel(tf.SiglipConfig(
            text_config=dict(_TRANSFORMER, vocab_size=99, max_position_embeddings=16, **_TOKEN_IDS),
            vision_config=_siglip_vision_config().to_dict())),
        _siglip_processor(),
    ),
    "siglip-vision": lambda: (tf.SiglipVisionModel(_siglip_vision_config()), _siglip_processor()),
    "videomae": lambda: (
        tf.VideoMAEModel(tf.VideoMAEConfig(**_VISION, num_frames=4, tubelet_size=2)),  # 2 x 16 = 32 tokens a clip
        _crop_processor(tf.VideoMAEImageProcessorPil),
    ),
}
TINY_KINDS: tuple[str, ...] = tuple(_BUILDERS)

# modality -> the kind standing in for it in tests and demos
_MODALITY_KINDS: dict[str, str] = {"audio": "hubert", "face": "vit", "video": "videomae", "frame": "clip-vision"}

_SAVED_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "preprocessor_config.json")


def build_tiny(kind: str, out_dir: str | os.PathLike, seed: int = 0) -> str:
    """Build the tiny `kind` encoder into out_dir/<kind> and return that path.

    An existing complete directory is reused as is, whatever seed built it.
    """
    if kind not in _BUILDERS:
        raise ValueError(f"build_tiny: unknown kind {kind!r}; expected one of {list(TINY_KINDS)}")
    target = Path(out_dir) / kind
    if _is_complete(target):
        return str(target)
    # Staged beside `target` and swapped in whole, so a crash or a concurrent builder never leaves a
    # half-written checkpoint there (an incomplete one left by someone else is replaced atomically).
    with replace_dir(target) as staging:
        with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
            torch.manual_seed(seed)
            model, processor = _BUILDERS[kind]()
        with quiet_hf_progress():
            model.save_pretrained(staging)
            processor.save_pretrained(staging)
    return str(target)


def _is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _SAVED_FILES)


def build_tiny_encoders(out_dir: str | os.PathLike, seed: int = 0) -> dict[str, str]:
    """One tiny encoder per modality under out_dir: HuBERT audio, ViT face, VideoMAE video, CLIP-vision frame."""
    return {modality: build_tiny(kind, out_dir, seed) for modality, kind in _MODALITY_KINDS.items()}
