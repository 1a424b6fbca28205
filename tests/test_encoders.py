"""Frozen encoders on tiny random-weight checkpoints of every supported family."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from emoreason.config import ConfigError, config_from_dict
from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.encoders.clips import clip_indices
from emoreason.encoders.config import EncoderConfig
from emoreason.encoders.fingerprint import model_fingerprint
from emoreason.encoders.frozen import FrozenEncoder, load_encoder
from emoreason.encoders.pooling import pool_tokens
from emoreason.encoders.tiny import TINY_KINDS, build_tiny, build_tiny_encoders

AUDIO_KINDS = ("hubert", "wav2vec2", "whisper")
IMAGE_KINDS = ("vit", "vitmae", "clip", "clip-vision", "dinov2", "siglip", "siglip-vision")
NO_CLS_KINDS = ("siglip", "siglip-vision")  # SigLIP pools its patches with an attention head
POOLINGS = ("mean", "cls", "none", "tokens:3")

# Tokens before pooling for the inputs below:
# 1.5 s audio = 24,000 samples / 320 per frame = 75 frames (HuBERT and wav2vec2 strides, and Whisper's
# 150 mel frames halved); an image = 1 CLS + (64 / 16)^2 patches = 17; 6 video frames = 2 clips of 4,
# each (4 / 2 tubelet) * 16 patches = 32.
AUDIO_FRAMES = 75
IMAGE_TOKENS = 17
VIDEO_CLIPS, CLIP_TOKENS = 2, 32


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("encoders")
    return {kind: build_tiny(kind, root) for kind in TINY_KINDS}


def sine(seconds: float, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * AUDIO_SAMPLE_RATE)) / AUDIO_SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def random_frames(n: int, h: int = 100, w: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def encode(enc: FrozenEncoder, kind: str) -> torch.Tensor:
    """The kind's native input through its encode_* method."""
    if kind in AUDIO_KINDS:
        return enc.encode_audio(sine(1.5))
    if kind in IMAGE_KINDS:
        return enc.encode_images(random_frames(3))
    return enc.encode_video(random_frames(6))


def expected_shape(kind: str, pooling: str) -> tuple[int, ...]:
    tokens = {"mean": 1, "cls": 1, "tokens:3": 3}
    if kind in AUDIO_KINDS:
        return (tokens.get(pooling, AUDIO_FRAMES), 32)
    if kind in IMAGE_KINDS:
        return (3, tokens.get(pooling, IMAGE_TOKENS - (kind in NO_CLS_KINDS)), 32)
    return (VIDEO_CLIPS * tokens.get(pooling, CLIP_TOKENS), 32)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("kind", TINY_KINDS)
def test_output_shape_and_dtype(tiny_dirs: dict[str, str], kind: str, pooling: str) -> None:
    cfg = EncoderConfig(model=tiny_dirs[kind], pooling=pooling, batch_size=2)  # 3 images -> 2 batches
    if pooling == "cls" and (kind not in IMAGE_KINDS or kind in NO_CLS_KINDS):
        with pytest.raises(ConfigError, match="key 'pooling'.*no CLS token"):
            load_encoder(cfg)
        return
    enc = load_encoder(cfg)
    out = encode(enc, kind)
    assert tuple(out.shape) == expected_shape(kind, pooling)
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert enc.hidden_size == 32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_layer_selects_hidden_state(tiny_dirs: dict[str, str], kind: str) -> None:
    first = encode(load_encoder(EncoderConfig(model=tiny_dirs[kind], layer=0, pooling="none")), kind)
    last = encode(load_encoder(EncoderConfig(model=tiny_dirs[kind], layer=-1, pooling="none")), kind)
    assert first.shape == last.shape
    assert not torch.allclose(first, last)


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_deterministic(tiny_dirs: dict[str, str], kind: str) -> None:
    # "none" keeps token order, so ViTMAE's patch shuffling would show here.
    enc = load_encoder(EncoderConfig(model=tiny_dirs[kind], pooling="none"))
    assert torch.equal(encode(enc, kind), encode(enc, kind))


def test_load_encoder_caches_by_settings(tiny_dirs: dict[str, str]) -> None:
    cfg = EncoderConfig(model=tiny_dirs["vit"])
    assert load_encoder(cfg) is load_encoder(EncoderConfig(model=tiny_dirs["vit"]))
    assert load_encoder(cfg) is not load_encoder(EncoderConfig(model=tiny_dirs["vit"], layer=0))


def test_whisper_trims_to_audio_length(tiny_dirs: dict[str, str]) -> None:
    enc = load_encoder(EncoderConfig(model=tiny_dirs["whisper"], pooling="none"))
    # 1 s = 100 mel frames of 160 samples -> 50 encoder frames after the stride-2 conv.
    assert enc.encode_audio(sine(1.0)).shape == (50, 32)
    assert enc.encode_audio(sine(2.0)).shape == (100, 32)
    # Past one 30 s window: 1500 frames from the full window + 50 from the 1 s remainder.
    assert enc.encode_audio(sine(31.0)).shape == (1550, 32)


def test_bfloat16_weights_give_float32_features(tiny_dirs: dict[str, str]) -> None:
    enc = load_encoder(EncoderConfig(model=tiny_dirs["hubert"], dtype="bfloat16"))
    out = enc.encode_audio(sine(1.5))
    assert out.dtype == torch.float32 and out.shape == (1, 32)


def test_features_feed_a_trainable_layer(tiny_dirs: dict[str, str]) -> None:
    feats = load_encoder(EncoderConfig(model=tiny_dirs["vit"])).encode_images(random_frames(2))
    projector = torch.nn.Linear(32, 4)
    projector(feats).sum().backward()  # inference-mode tensors would refuse to be saved for backward
    assert projector.weight.grad is not None


@pytest.mark.parametrize(
    ("kind", "method", "needs"),
    [
        ("hubert", "encode_images", "vit"),
        ("whisper", "encode_video", "videomae"),
        ("vit", "encode_audio", "hubert"),
        ("clip", "encode_video", "videomae"),
        ("videomae", "encode_images", "clip"),
    ],
)
def test_wrong_modality_raises(tiny_dirs: dict[str, str], kind: str, method: str, needs: str) -> None:
    enc = load_encoder(EncoderConfig(model=tiny_dirs[kind]))
    arg = sine(1.0) if method == "encode_audio" else random_frames(4)
    with pytest.raises(ValueError, match=f"{method}: .*{kind}.* needs one of .*'{needs}'"):
        getattr(enc, method)(arg)


def test_bad_inputs_raise(tiny_dirs: dict[str, str]) -> None:
    audio = load_encoder(EncoderConfig(model=tiny_dirs["hubert"]))
    with pytest.raises(ValueError, match="shorter than one frame"):
        audio.encode_audio(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="1-D waveform"):
        audio.encode_audio(np.zeros((2, 16000), np.float32))
    images = load_encoder(EncoderConfig(model=tiny_dirs["vit"]))
    with pytest.raises(ValueError, match=r"uint8 RGB frames"):
        images.encode_images(random_frames(2).astype(np.float32))
    with pytest.raises(ValueError, match=r"uint8 RGB frames"):
        images.encode_images(random_frames(0))


def test_layer_out_of_range(tiny_dirs: dict[str, str]) -> None:
    # 2 layers -> 3 hidden states: valid indices -3..2.
    load_encoder(EncoderConfig(model=tiny_dirs["vit"], layer=-3))
    with pytest.raises(ConfigError, match="key 'layer'.*got 3"):
        load_encoder(EncoderConfig(model=tiny_dirs["vit"], layer=3))


def test_unsupported_model_type(tmp_path: os.PathLike) -> None:
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                         vocab_size=99)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model type 'bert' is not a supported encoder"):
        load_encoder(EncoderConfig(model=str(tmp_path)))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model", ""),
        ("layer", True),
        ("pooling", "max"),
        ("pooling", "tokens:0"),
        ("pooling", "tokens:x"),
        ("dtype", "float64"),
        ("device", "gpu0"),
        ("trust_remote_code", "yes"),
        ("batch_size", 0),
    ],
)
def test_bad_config_names_the_key(key: str, value: object) -> None:
    kwargs = {"model": "some/model", key: value}
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        EncoderConfig(**kwargs)


def test_config_from_yaml_dict_names_the_key() -> None:
    with pytest.raises(ConfigError, match="key 'pooling'"):
        config_from_dict(EncoderConfig, {"model": "some/model", "pooling": "max"})
    cfg = config_from_dict(EncoderConfig, {"model": "some/model", "pooling": "tokens:8", "layer": -2})
    assert (cfg.pooling, cfg.layer) == ("tokens:8", -2)


def test_settings_fingerprint() -> None:
    base = EncoderConfig(model="some/model")
    runtime_only = EncoderConfig(model="some/model", device="cuda", batch_size=2)
    assert runtime_only.settings_fingerprint() == base.settings_fingerprint()
    for change in ({"layer": -2}, {"pooling": "none"}, {"dtype": "bfloat16"}, {"model": "other/model"}):
        assert EncoderConfig(**{"model": "some/model", **change}).settings_fingerprint() != base.settings_fingerprint()


def test_model_fingerprint_follows_the_weights(tiny_dirs: dict[str, str], tmp_path: os.PathLike) -> None:
    original = tiny_dirs["hubert"]
    copy = shutil.copytree(original, tmp_path / "copy")
    assert model_fingerprint(str(copy)) == model_fingerprint(original)  # content, not location
    other = build_tiny("hubert", tmp_path / "other", seed=1)
    shutil.copyfile(os.path.join(other, "model.safetensors"), copy / "model.safetensors")
    assert model_fingerprint(str(copy)) != model_fingerprint(original)
    assert model_fingerprint("not-cached/model") == "not-cached/model"  # hub id without a local snapshot


def test_load_encoder_reloads_rewritten_checkpoint(tiny_dirs: dict[str, str], tmp_path: os.PathLike) -> None:
    path = shutil.copytree(tiny_dirs["hubert"], tmp_path / "hubert")
    cfg = EncoderConfig(model=str(path))
    before = load_encoder(cfg)
    other = build_tiny("hubert", tmp_path / "other", seed=1)
    # Replace, not overwrite: the loaded weights are memory-mapped, so writing into the same file
    # would change `before` too.
    os.replace(os.path.join(other, "model.safetensors"), path / "model.safetensors")
    after = load_encoder(cfg)
    assert after is not before
    assert not torch.equal(after.encode_audio(sine(1.0)), before.encode_audio(sine(1.0)))


def test_build_tiny_reuses_complete_directory(tiny_dirs: dict[str, str]) -> None:
    path = tiny_dirs["vit"]
    stamp = os.stat(os.path.join(path, "model.safetensors")).st_mtime_ns
    assert build_tiny("vit", os.path.dirname(path)) == path
    assert os.stat(os.path.join(path, "model.safetensors")).st_mtime_ns == stamp
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors", "preprocessor_config.json"]


def test_build_tiny_encoders_one_per_modality(tiny_dirs: dict[str, str]) -> None:
    root = os.path.dirname(tiny_dirs["vit"])
    paths = build_tiny_encoders(root)
    assert paths == {"audio": tiny_dirs["hubert"], "face": tiny_dirs["vit"],
                     "video": tiny_dirs["videomae"], "frame": tiny_dirs["clip-vision"]}


def test_build_tiny_unknown_kind(tmp_path: os.PathLike) -> None:
    with pytest.raises(ValueError, match="unknown kind 'bert'"):
        build_tiny("bert", tmp_path)


def test_pool_tokens() -> None:
    hidden = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)  # [n, t, d]
    assert torch.equal(pool_tokens(hidden, "none"), hidden)
    assert torch.equal(pool_tokens(hidden, "cls"), hidden[:, :1])
    assert torch.allclose(pool_tokens(hidden, "mean"), hidden.mean(1, keepdim=True))
    assert pool_tokens(hidden, "tokens:2").shape == (2, 2, 3)
    assert torch.allclose(pool_tokens(hidden, "tokens:5"), hidden)
    assert pool_tokens(hidden, "tokens:8").shape == (2, 8, 3)  # fewer tokens than K: spans repeat
    with pytest.raises(ValueError, match=r"\[n, t, d\]"):
        pool_tokens(hidden[0], "mean")


def test_clip_indices() -> None:
    # 6 frames, clips of 4: spans 0-2 and 3-5, each stretched to 4 frames.
    assert clip_indices(6, 4).tolist() == [[0, 1, 1, 2], [3, 4, 4, 5]]
    assert clip_indices(4, 4).tolist() == [[0, 1, 2, 3]]
    assert clip_indices(2, 4).tolist() == [[0, 0, 1, 1]]  # fewer frames: repeated in order
    assert clip_indices(9, 4).shape == (3, 4)
