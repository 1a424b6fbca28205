"""LoRA-tuned encoders in the projector model (encoders.<m>.train.mode: lora, emoreason.encoders.tuned).

One tiny run is shared (module fixture): a DINOv2 face encoder tuned with LoRA on q_proj/v_proj and a
frozen CLIP-vision frame encoder, live features, three optimiser steps through `emoreason train`'s
setup. Then: only the adapters moved, the frozen encoder did not, save -> reload gives the same
logits, serving's Featurizer gives the features training computed, and export merges the adapters.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from emoreason.config import ConfigError, config_from_dict
from emoreason.encoders.config import EncoderConfig, EncoderTraining

FACE_LORA = {"mode": "lora", "r": 4, "alpha": 8, "lora_targets": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_llm_dir):
    from emoreason.data_prep.instructions import build_conversations
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.encoders.tiny import build_tiny
    from emoreason.schema import load_samples, write_samples

    root = tmp_path_factory.mktemp("tuned_encoders")
    data = root / "data"
    generate_dataset(data, SyntheticConfig(num_per_class=1, classes=["happy", "sad"], seconds=0.5, with_audio=False))
    samples = load_samples(data / "samples.jsonl")
    train = build_conversations(samples, "recognition", modalities=["face", "frame"], seed=0, labels=["happy", "sad"])
    write_samples(data / "train.jsonl", train)
    encoders = {"face": build_tiny("dinov2", root / "encoders"), "frame": build_tiny("clip-vision", root / "encoders")}
    return {"root": root, "train": data / "train.jsonl", "llm": tiny_llm_dir, "encoders": encoders}


def train_overrides(ws, output_dir) -> list[str]:
    return [
        "stage=instruct", f"model.llm={ws['llm']}", f"data.train={ws['train']}", "data.feature_source=live",
        f"model.encoders.face.model={ws['encoders']['face']}", "model.encoders.face.pooling=none",
        f"model.encoders.face.train={FACE_LORA}".replace("'", ""),
        f"model.encoders.frame.model={ws['encoders']['frame']}", "model.encoders.frame.pooling=mean",
        "model.projectors.face.kind=mlp", "model.projectors.frame.kind=mlp", "model.media.video.num_frames=2",
        "model.media.faces.size=64", "model.lora.r=4", "model.max_length=256",
        f"optim.output_dir={output_dir}", "optim.max_steps=3", "optim.batch_size=2", "optim.learning_rate=0.05",
        "optim.warmup_ratio=0", "optim.save_steps=100", "optim.logging_steps=1", "optim.use_cpu=true",
    ]


@pytest.fixture(scope="module")
def trained(workspace):
    from emoreason.encoders.frozen import load_encoder
    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup, train

    cfg = load_train_config(None, train_overrides(workspace, workspace["root"] / "run"))
    run = setup(cfg)
    face = run.model.encoders["face"]
    frame = load_encoder(run.model.model_config.encoders["frame"])  # the frozen encoder training's Featurizer runs
    before = {"face": {k: v.clone() for k, v in face.peft.named_parameters()},
              "frame": {k: v.clone() for k, v in frame._model.named_parameters()}}
    model_dir = train(run)
    losses = [e["loss"] for e in run.trainer.state.log_history if "loss" in e]
    return {"run": run, "before": before, "frame": frame, "model_dir": model_dir, "losses": losses, "cfg": cfg}


def test_lora_changes_only_the_adapters_and_the_frozen_encoder_stays(trained):
    face = trained["run"].model.encoders["face"]
    after = dict(face.peft.named_parameters())
    before = trained["before"]["face"]
    adapters = [k for k in after if "lora_" in k]
    assert adapters and all(after[k].requires_grad for k in adapters)
    assert any(not torch.equal(before[k], after[k]) for k in adapters), "no adapter weight moved"
    for k in after:
        if "lora_" not in k:
            assert torch.equal(before[k], after[k]), f"base weight {k} changed"
            assert not after[k].requires_grad
    for k, v in trained["frame"]._model.named_parameters():
        assert torch.equal(trained["before"]["frame"][k], v), f"frozen encoder weight {k} changed"
    assert all(torch.isfinite(torch.tensor(trained["losses"])))


def _batch(run, n: int = 2):
    dataset = run.train_dataset
    return run.trainer.data_collator([dataset[i] for i in range(n)])


def _logits(model, batch) -> torch.Tensor:
    inputs = {k: v for k, v in batch.items() if k not in ("sample_ids", "labels")}
    with torch.no_grad():
        return model.eval()(**inputs).logits


def test_save_reload_gives_identical_logits(trained):
    from emoreason.model.loading import ENCODER_ADAPTERS_FILE, load_model

    run = trained["run"]
    assert (trained["model_dir"] / ENCODER_ADAPTERS_FILE).is_file()
    batch = _batch(run)
    assert "encoder_inputs" in batch and "face" not in batch["features"]
    reloaded, _ = load_model(trained["model_dir"])
    assert torch.equal(_logits(run.model, batch), _logits(reloaded, batch))


def test_serving_features_equal_training_live_features(trained):
    from emoreason.features.featurizer import sample_files
    from emoreason.serving.hf_engine import HFEngine

    run = trained["run"]
    dataset = run.train_dataset
    sample = dataset.samples[0]
    _, images = dataset.training_inputs(sample)
    with torch.no_grad():
        training = run.model.encoders["face"](images["face"]).to(torch.float16)
    engine = HFEngine(trained["model_dir"])
    assert engine.featurizer.tuned["face"] is engine.model.encoders["face"]
    files = sample_files(sample, sample.media_root(None, dataset.samples_dir))
    served = engine.featurizer.featurize(files, ["face"]).features["face"]
    assert served.dtype == torch.float16 and torch.equal(served, training)


def test_export_merges_the_encoder_adapters(trained, tmp_path):
    from emoreason.encoders.frozen import FrozenEncoder
    from emoreason.model.loading import load_model, read_model_config
    from emoreason.serving.export import export_projector_model

    out = export_projector_model(trained["model_dir"], tmp_path / "export")
    config, _ = read_model_config(out)
    face = config.encoders["face"]
    assert face.train == EncoderTraining() and face.model == str(out / "encoders" / "face")
    exported, _ = load_model(out)
    assert not len(exported.encoders)
    images = trained["run"].train_dataset.training_inputs(trained["run"].train_dataset.samples[0])[1]["face"]
    with torch.no_grad():
        tuned = trained["run"].model.encoders["face"].encoder.image_tokens(images)
    merged = FrozenEncoder(face).image_tokens(images)
    torch.testing.assert_close(merged, tuned, rtol=1e-4, atol=1e-4)


def test_lora_target_matching_nothing_is_named_before_training(workspace, tmp_path):
    from emoreason.train.config import load_train_config

    overrides = [o.replace("[q_proj, v_proj]", "[query]") for o in train_overrides(workspace, tmp_path)]
    with pytest.raises(ConfigError, match=r"model.encoders.face.train.lora_targets.*'query' matches no linear layer.*'q_proj'"):
        load_train_config(None, overrides)


def test_lora_is_refused_where_it_cannot_apply():
    from emoreason.data_prep.prep_config import PrepConfig

    with pytest.raises(ConfigError, match=r"train.*mode.*frozen or lora"):
        config_from_dict(EncoderConfig, {"model": "x", "train": {"mode": "full"}})
    with pytest.raises(ConfigError, match=r"lora_targets.*unset unless mode is lora"):
        config_from_dict(EncoderConfig, {"model": "x", "train": {"lora_targets": ["query"]}})
    with pytest.raises(ConfigError, match=r"required_modalities.*tuned with LoRA.*prep skips"):
        config_from_dict(PrepConfig, {"input": "x.jsonl", "output_dir": "out", "required_modalities": ["face"],
                                      "encoders": {"face": {"model": "x", "train": {"mode": "lora"}}}})
    from emoreason.model.config import ModelConfig
    from emoreason.train.config import TrainConfig

    with pytest.raises(ConfigError, match=r"encoders.video.train.mode.*image encoders"):
        config_from_dict(ModelConfig, {"llm": "x", "encoders": {"video": {"model": "x", "train": {"mode": "lora"}}},
                                       "projectors": {"video": {"kind": "mlp"}}})
    tuned_model = {"llm": "x", "encoders": {"face": {"model": "x", "train": {"mode": "lora"}}}, "projectors": {"face": {}}}
    with pytest.raises(ConfigError, match=r"model.encoders.face.train.mode.*frozen for stage grpo"):
        config_from_dict(TrainConfig, {"stage": "grpo", "init_from": "m", "model": tuned_model, "data": {"train": "x"},
                                       "optim": {"output_dir": "o"}})


def test_tokens_per_image_matches_the_forward_pass(workspace):
    import numpy as np

    from emoreason.encoders.frozen import FrozenEncoder

    images = np.random.default_rng(0).integers(0, 255, (3, 80, 96, 3), dtype=np.uint8)
    for kind, pooling in (("face", "none"), ("face", "patches"), ("frame", "tokens:3"), ("frame", "mean")):
        encoder = FrozenEncoder(EncoderConfig(workspace["encoders"][kind], pooling=pooling))
        pixels = encoder.pixel_values(images)
        assert encoder.encode_images(images).shape[1] == encoder.tokens_per_image(*pixels.shape[-2:]), pooling


def test_untuned_modalities_keep_the_frozen_encoder_path(workspace):
    from emoreason.features.featurizer import EncoderLoadError, Featurizer
    from emoreason.features.media_config import MediaConfig

    tuned_cfg = EncoderConfig(workspace["encoders"]["face"], train=EncoderTraining(mode="lora"))
    featurizer = Featurizer({"face": tuned_cfg}, MediaConfig())
    with pytest.raises(EncoderLoadError, match=r"encoders.face.train.mode"):
        featurizer.load_all()  # the checkpoint alone would silently give the untuned features
    assert dataclasses.replace(tuned_cfg, train=EncoderTraining()).settings_fingerprint() == tuned_cfg.settings_fingerprint()


@pytest.fixture(scope="module")
def prep_dir(workspace):
    """`emoreason prep` of the workspace's clips with the tuned face encoder and the frozen frame encoder."""
    from emoreason.config import load_config
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.data_prep.runner import run_prep

    root, encoders = workspace["root"], workspace["encoders"]
    prep = root / "prep"
    run_prep(load_config(PrepConfig, None, [
        f"input={workspace['train'].parent / 'samples.jsonl'}", f"output_dir={prep}", "media.video.num_frames=2",
        "media.faces.size=64", f"encoders.frame.model={encoders['frame']}", "encoders.frame.pooling=mean",
        f"encoders.face.model={encoders['face']}", "encoders.face.pooling=none", f"encoders.face.train={FACE_LORA}".replace("'", ""),
    ]))
    return prep


def test_prep_skips_the_tuned_encoder_and_training_computes_it_from_the_media(workspace, prep_dir):
    """Prep caches the frozen frame features only; training from its samples (feature_source cache) takes the
    tuned face encoder from featurizer.json and gets its images from the media, not from any cache."""
    from emoreason.data_prep.instructions import build_conversations
    from emoreason.features.contract import read_contract
    from emoreason.schema import load_samples, write_samples
    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup

    root, prep = workspace["root"], prep_dir
    prepped = load_samples(prep / "samples.jsonl")
    assert prepped and all(set(s.features) == {"frame"} for s in prepped)
    assert read_contract(prep / "samples.jsonl").settings.encoders["face"].train.mode == "lora"
    write_samples(prep / "train.jsonl", build_conversations(prepped, "recognition", modalities=["face", "frame"], seed=0,
                                                            labels=["happy", "sad"]))
    cfg = load_train_config(None, [f"model.llm={workspace['llm']}", "stage=instruct", f"data.train={prep / 'train.jsonl'}",
                                   f"optim.output_dir={root / 'run_cached'}", "optim.use_cpu=true", "model.lora.r=4"])
    assert cfg.model.encoders["face"].train.mode == "lora"
    run = setup(cfg)
    item = run.train_dataset[0]
    assert set(item["features"]) == {"frame"} and set(item["encoder_inputs"]) == {"face"}


def test_infer_from_the_cache_computes_the_tuned_encoder_from_the_media(trained, prep_dir, tmp_path):
    """`infer --feature-source cache` on a model with a LoRA-tuned encoder (trained, or exported with the encoder
    merged): the frozen frame features come from prep's cache, the tuned face encoder runs on the media (no cache
    holds its features), so every sample has both and the answers are the live run's."""
    import json

    from emoreason.model.loading import read_model_config, trained_encoder_modalities
    from emoreason.serving.export import export_projector_model
    from emoreason.serving.infer import main

    exported = export_projector_model(trained["model_dir"], tmp_path / "export")
    assert trained_encoder_modalities(read_model_config(exported)[0], exported) == ["face"]
    runs = {}
    for name, model_dir, source in [("live", trained["model_dir"], "live"), ("cache", trained["model_dir"], "cache"),
                                    ("export_cache", exported, "cache")]:
        out = tmp_path / f"{name}.jsonl"
        assert main(["--model", str(model_dir), "--input", str(prep_dir / "samples.jsonl"), "--out", str(out),
                     "--feature-source", source, "--labels", "happy,sad", "--max-tokens", "4"]) == 0
        runs[name] = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(len(lines) == 2 and all("absent" not in x and "error" not in x for x in lines) for lines in runs.values()), runs
    assert [x["text"] for x in runs["cache"]] == [x["text"] for x in runs["live"]]
