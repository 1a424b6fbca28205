"""Tiny native twins: each loads offline through the transformers Auto classes, with the real special tokens."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import transformers as tf

from emoreason.native.arch import ARCHS, COMPONENTS, component_of
from emoreason.native.tiny import TINY_KINDS
from native_twins import twin_dir

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_twin_loads_with_auto_classes(kind, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    directory = twin_dir(tmp_path_factory, kind)
    config = tf.AutoConfig.from_pretrained(directory)
    assert config.model_type == kind
    model = tf.AutoModelForImageTextToText.from_pretrained(directory)
    assert type(model).__name__ == ARCHS[kind].model_class
    tokenizer = tf.AutoTokenizer.from_pretrained(directory)
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    for modality, token in ARCHS[kind].pad_tokens.items():
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1, (modality, token)
    image_processor = tf.AutoImageProcessor.from_pretrained(directory)
    assert image_processor is not None
    if "audio" in ARCHS[kind].modalities:
        assert isinstance(tf.AutoFeatureExtractor.from_pretrained(directory), tf.WhisperFeatureExtractor)
    assert json.loads((Path(directory) / "video_preprocessor_config.json").read_text())["do_sample_frames"] is False


def test_token_ids_in_config_match_the_tokenizer(tmp_path_factory):
    vl = twin_dir(tmp_path_factory, "qwen2_5_vl")
    tok, cfg = tf.AutoTokenizer.from_pretrained(vl), tf.AutoConfig.from_pretrained(vl)
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    omni = twin_dir(tmp_path_factory, "qwen2_5_omni_thinker")
    tok, cfg = tf.AutoTokenizer.from_pretrained(omni), tf.AutoConfig.from_pretrained(omni)
    assert (tok.audio_token, tok.video_token, tok.audio_bos_token) == ("<|AUDIO|>", "<|VIDEO|>", "<|audio_bos|>")
    assert cfg.audio_token_id == tok.convert_tokens_to_ids("<|AUDIO|>")
    intern = twin_dir(tmp_path_factory, "internvl")
    tok, cfg = tf.AutoTokenizer.from_pretrained(intern), tf.AutoConfig.from_pretrained(intern)
    assert (tok.start_image_token, tok.context_image_token, tok.end_image_token) == ("<img>", "<IMG_CONTEXT>", "</img>")
    assert cfg.image_token_id == tok.context_image_token_id


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_chat_template_renders_typed_items_like_placeholders(kind, tmp_path_factory):
    tok = tf.AutoTokenizer.from_pretrained(twin_dir(tmp_path_factory, kind))
    arch = ARCHS[kind]
    typed = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which emotion?"}]}]
    plain = [{"role": "user", "content": arch.placeholders["video"] + "Which emotion?"}]
    assert tok.apply_chat_template(typed, tokenize=False) == tok.apply_chat_template(plain, tokenize=False)


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_every_parameter_belongs_to_a_component(kind, tmp_path_factory):
    model = tf.AutoModelForImageTextToText.from_pretrained(twin_dir(tmp_path_factory, kind))
    seen = {component_of(ARCHS[kind], name) for name, _ in model.named_parameters()}
    assert None not in seen
    assert seen == {c for c in COMPONENTS if c in ARCHS[kind].components}


def test_existing_twin_is_reused(tmp_path_factory):
    from emoreason.native.tiny import build_tiny_native

    directory = twin_dir(tmp_path_factory, "internvl")
    before = (Path(directory) / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_native("internvl", directory) == directory
    assert (Path(directory) / "model.safetensors").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="kind"):
        build_tiny_native("llava", directory)


@pytest.mark.skipif(not HAS_TORCHVISION, reason="transformers' video processors (so AutoProcessor for these "
                    "backbones) need torchvision, which cannot load beside this machine's CPU torch")
@pytest.mark.parametrize("kind", TINY_KINDS)
def test_autoprocessor_loads_the_twin_whole(kind, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    processor = tf.AutoProcessor.from_pretrained(twin_dir(tmp_path_factory, kind))
    assert processor.video_processor is not None and processor.tokenizer is not None
