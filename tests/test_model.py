"""EmotionLM: the splice, save/load, live vs cached features, and config validation."""

from pathlib import Path

import pytest
import torch

from emoreason.config import ConfigError
from emoreason.demo import TRAIN_CONFIG
from emoreason.features.featurizer import Featurizer
from emoreason.model.features import cached_features, collate_features, live_features
from emoreason.model.loading import build_model, load_model, save_model
from emoreason.schema import load_samples
from emoreason.train.collator import EmotionCollator
from emoreason.train.config import load_train_config


@pytest.fixture(scope="module")
def cfg(tiny_data, tmp_path_factory):
    return load_train_config(TRAIN_CONFIG, tiny_data.train_overrides(tmp_path_factory.mktemp("out")))


@pytest.fixture(scope="module")
def built(cfg):
    return build_model(cfg.model, seed=0)


def batch_of(tiny_data, processor, modalities, n=3):
    samples = load_samples(tiny_data.train)[:n]
    items = []
    for s in samples:
        feats = cached_features(s, tiny_data.train.parent, modalities)
        enc = processor.encode(s.conversations, {m: f.shape[0] for m, f in feats.items()})
        items.append({"input_ids": enc.input_ids, "media_ids": enc.media_ids, "labels": enc.labels, "features": feats})
    return EmotionCollator(processor.pad_id)(items)


def test_forward_splices_every_modality(built, tiny_data):
    model, processor = built
    batch = batch_of(tiny_data, processor, model.model_config.modalities)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name, p in model.projectors.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached projector {name}"
    model.zero_grad()
    # The media positions really carry projected features, not the pad token's embedding.
    embeds = model.embed(batch["input_ids"], batch["media_ids"], batch["features"])
    text_only = model.llm.get_input_embeddings()(batch["input_ids"])
    media = batch["media_ids"] > 0
    assert not torch.allclose(embeds[media], text_only[media])
    assert torch.equal(embeds[~media], text_only[~media])


def test_count_mismatch_names_modality_and_numbers(built, tiny_data):
    model, processor = built
    batch = batch_of(tiny_data, processor, model.model_config.modalities, n=1)
    x, mask = batch["features"]["audio"]
    batch["features"]["audio"] = (x[:, :-1], mask[:, :-1])  # one audio token fewer than its placeholders
    with pytest.raises(ValueError, match=r"audio: 4 placeholder positions but 3 projected feature tokens"):
        model(**batch)
    del batch["features"]["audio"]
    with pytest.raises(ValueError, match=r"audio: 4 placeholder positions but no audio features"):
        model(**batch)


def test_save_load_round_trip_gives_identical_logits(built, tiny_data, tmp_path):
    model, processor = built
    with torch.no_grad():  # make the adapter non-trivial: a fresh LoRA B is zero
        for name, p in model.llm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    batch = batch_of(tiny_data, processor, model.model_config.modalities)
    # Inference state, as load_model returns it: eval mode, nothing requiring grad. (PyTorch's
    # MultiheadAttention takes a fused fast path only then, which rounds differently at ~1e-6.)
    model.eval().requires_grad_(False)
    with torch.no_grad():
        before = model(**batch).logits
    save_model(model, processor, tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"emoreason_model.json", "projectors.safetensors", "adapter", "tokenizer"}
    assert (tmp_path / "m/adapter/adapter_model.safetensors").exists()
    reloaded, reproc = load_model(tmp_path / "m")
    with torch.no_grad():
        after = reloaded(**batch).logits
    assert torch.equal(before, after), (before - after).abs().max()
    assert reproc.tokenizer.chat_template == processor.tokenizer.chat_template


def test_live_and_cached_features_give_identical_projector_inputs(cfg, tiny_data):
    sample = load_samples(tiny_data.train)[0]
    modalities = list(cfg.model.projectors)
    cached = cached_features(sample, tiny_data.train.parent, modalities)
    featurizer = Featurizer(cfg.model.encoders, cfg.model.media)
    live, record = live_features(featurizer, sample, tiny_data.train.parent.parent / "data", modalities)
    assert not record.absent
    assert set(live) == set(cached) == set(modalities)
    for m in modalities:
        assert live[m].dtype == cached[m].dtype == torch.float16
        assert torch.equal(live[m], cached[m]), m
    assert collate_features([live])["face"][0].shape == collate_features([cached])["face"][0].shape


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.learning_rte=0.1"], "key 'optim.learning_rte': unknown key"),
        (["model.encoders.audio.model=/nonexistent/hubert"], "key 'model.encoders.audio.model': encoder checkpoint not found"),
        (["model.lora.target_modules=[q_proj, qkv_proj]"], "key 'model.lora.target_modules': 'qkv_proj' is not a module"),
        (["model.projectors={audio: {kind: mlp}, smell: {kind: mlp}}"], "key 'model.projectors.smell'"),
        (["model.projectors.face.kind=attn_pool", "model.projectors.face.num_tokens=null"], "key 'model.projectors.face.num_tokens'"),
        (["stage=pretrain"], "key 'stage': expected one of ['align', 'instruct', 'grpo']"),
        (["model.llm=/nonexistent/llm"], "key 'model.llm': LLM checkpoint not found"),
    ],
)
def test_bad_train_configs_fail_at_load(tiny_data, tmp_path, overrides, message):
    with pytest.raises(ConfigError) as info:
        load_train_config(TRAIN_CONFIG, tiny_data.train_overrides(tmp_path) + overrides)
    assert message in str(info.value)
    # Each bad value was typed on the command line, so the error blames that override, not the YAML file.
    assert str(info.value).startswith(f"command line override {overrides[-1]}") or TRAIN_CONFIG in str(info.value)


def test_every_config_yaml_loads(tiny_data, tmp_path):
    root = Path(__file__).resolve().parents[1] / "configs"
    for path in sorted(root.glob("train/*.yaml")):
        if "kind: native" in path.read_text():
            continue  # the native kind's configs load in tests/test_native_integration.py, on a tiny twin
        cfg = load_train_config(str(path), tiny_data.train_overrides(tmp_path), check_checkpoints=False)
        assert cfg.model.projectors, path
        assert path.read_text().startswith("#"), f"{path} must start with the command that runs it"


def test_prefusion_inserts_fused_tokens(tiny_data, tmp_path):
    from emoreason.constants import MEDIA_INDEX

    cfg = load_train_config(TRAIN_CONFIG, tiny_data.train_overrides(tmp_path) + ["model.prefusion={enabled: true, num_tokens: 3}"])
    model, processor = build_model(cfg.model, seed=0)
    batch = batch_of(tiny_data, processor, model.model_config.modalities)
    assert (batch["media_ids"] == MEDIA_INDEX["fusion"]).sum(dim=1).tolist() == [3, 3, 3]
    out = model(**batch)
    out.loss.backward()
    assert model.prefusion.queries.grad.abs().sum() > 0


def test_gradient_checkpointing_takes_the_trainers_keywords_and_keeps_the_gradients(cfg, tiny_data):
    """transformers 5.19's Trainer calls gradient_checkpointing_enable(gradient_checkpointing_kwargs=...,
    every_n_layers=..., offload=...): the keywords reach the LLM, the gradients are unchanged."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    grads = []
    for call in (None, {"gradient_checkpointing_kwargs": None, "every_n_layers": 1, "offload": False}):
        model, processor = build_model(cfg.model, seed=0)
        model.train()
        if call is not None:
            model.gradient_checkpointing_enable(**call)
            assert model.is_gradient_checkpointing
        batch = batch_of(tiny_data, processor, model.model_config.modalities)
        model(**{k: batch[k] for k in ("input_ids", "attention_mask", "media_ids", "labels", "features")}).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-5, rtol=1e-4, msg=name)

    model, _ = build_model(cfg.model, seed=0)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False}, every_n_layers=2)
    layers = [m for m in model.llm.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert [m.gradient_checkpointing for m in layers] == [i % 2 == 0 for i in range(len(layers))]
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing
    model.gradient_checkpointing_enable({"use_reentrant": False})  # TRL re-enables with the kwargs dict alone
    assert model.is_gradient_checkpointing
    with pytest.warns(UserWarning, match="does not take.*not_a_keyword"):
        model.gradient_checkpointing_enable(not_a_keyword=3)
    assert model.is_gradient_checkpointing
