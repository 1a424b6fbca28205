"""DINOv2 and SigLIP families, CLIP's projected image_features, patch pooling and two outputs of one forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emoreason.config import ConfigError
from emoreason.encoders.config import EncoderConfig
from emoreason.encoders.frozen import FrozenEncoder
from emoreason.encoders.tiny import build_tiny
from emoreason.model.projectors import ProjectorConfig, build_projector

PATCHES = 16  # (64 / 16)^2 for every tiny image encoder


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("families")
    return {kind: build_tiny(kind, root) for kind in ("dinov2", "siglip", "siglip-vision", "clip")}


def images(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 40, 56, 3), dtype=np.uint8)  # [n, h, w, 3]


@pytest.mark.parametrize(("kind", "pooling", "tokens"), [
    ("dinov2", "none", 1 + PATCHES), ("dinov2", "patches", PATCHES), ("dinov2", "cls", 1), ("dinov2", "mean", 1),
    ("siglip", "none", PATCHES), ("siglip-vision", "none", PATCHES), ("siglip-vision", "tokens:4", 4),
])
def test_new_families_encode_images(tiny_dirs, kind, pooling, tokens):
    encoder = FrozenEncoder(EncoderConfig(model=tiny_dirs[kind], pooling=pooling))
    feats = encoder.encode_images(images())
    assert feats.shape == (3, tokens, 32) and encoder.hidden_size == 32
    assert feats.dtype == torch.float32 and torch.isfinite(feats).all()


@pytest.mark.parametrize("pooling", ["cls", "patches"])
def test_siglip_has_no_cls_token(tiny_dirs, pooling):
    with pytest.raises(ConfigError, match="key 'pooling'.*no CLS token"):
        FrozenEncoder(EncoderConfig(model=tiny_dirs["siglip-vision"], pooling=pooling))


@pytest.mark.parametrize(("kind", "width"), [("clip", 16), ("siglip", 32)])  # CLIP: projection_dim 16
def test_image_features_output(tiny_dirs, kind, width):
    encoder = FrozenEncoder(EncoderConfig(model=tiny_dirs[kind], output="image_features", pooling="none"))
    feats = encoder.encode_images(images())
    assert feats.shape == (3, 1, width) and encoder.hidden_size == width
    if kind == "clip":  # the pooled CLS through the visual projection, as CLIPModel.get_image_features
        hidden = FrozenEncoder(EncoderConfig(model=tiny_dirs["clip"], pooling="none"))
        pixels = hidden.processor(list(images()), return_tensors="pt", input_data_format="channels_last")["pixel_values"]
        with torch.no_grad():
            model = hidden._model
            expected = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        torch.testing.assert_close(feats[:, 0], expected)


def test_image_features_needs_an_image_text_checkpoint(tiny_dirs):
    with pytest.raises(ConfigError, match="key 'output'"):
        FrozenEncoder(EncoderConfig(model=tiny_dirs["dinov2"], output="image_features"))


@pytest.mark.parametrize(("fields", "key"), [
    ({"output": "logits"}, "output"),
    ({"output": "image_features", "layer": -2}, "layer"),
    ({"output": "image_features", "pooling": "tokens:4"}, "pooling"),
])
def test_output_config_errors(fields, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        EncoderConfig(model="some/encoder", **fields)


def test_default_output_keeps_old_cache_keys():
    fingerprint = EncoderConfig(model="m").settings_fingerprint()
    assert "output" not in fingerprint
    assert EncoderConfig(model="m", output="image_features", pooling="none").settings_fingerprint()["output"] == "image_features"


def test_one_forward_feeds_cls_and_patches(tiny_dirs):
    # Emotion-LLaMA: EVA-CLIP's CLS through one Linear, its patches concatenated 4 at a time through another.
    encoder = FrozenEncoder(EncoderConfig(model=tiny_dirs["dinov2"], pooling="none"))
    outputs = encoder.encode_image_outputs(images(1), {"cls": "cls", "patches": "patches"})
    full = encoder.encode_images(images(1))  # [1, 17, 32]
    assert torch.equal(outputs["cls"], full[:, :1]) and torch.equal(outputs["patches"], full[:, 1:])
    concat = build_projector(ProjectorConfig(kind="token_concat", concat=4), 32, 24)
    cls = build_projector(ProjectorConfig(kind="linear"), 32, 24)
    patches = outputs["patches"]
    tokens, mask = concat(patches, torch.ones(patches.shape[:2], dtype=torch.bool))
    cls_tokens, _ = cls(outputs["cls"], torch.ones(1, 1, dtype=torch.bool))
    assert tokens.shape == (1, PATCHES // 4, 24) and cls_tokens.shape == (1, 1, 24)
    with pytest.raises(ValueError, match="key 'concat'.*drop_prefix_tokens=1"):
        concat.num_output_tokens(full.shape[1])  # CLS + 16 patches with the CLS kept
    with pytest.raises(ConfigError, match=r"key 'poolings.cls'"):
        FrozenEncoder(EncoderConfig(model=tiny_dirs["siglip-vision"])).encode_image_outputs(images(1), {"cls": "cls"})
