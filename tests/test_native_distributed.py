"""torchrun with 2 ranks under DeepSpeed ZeRO-2 and ZeRO-3 on CPU for the tiny native twin, through `emoreason train`
itself; under ZeRO-3 the saved `full` components are whole, trained tensors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from train_launch import ROOT, torchrun_two_ranks

pytestmark = pytest.mark.slow

BATCH_SIZE = 2  # per rank


def _torchrun_train(tmp_path: Path, zero: str, extra: list[str] = ()):
    from emoreason.demo_native import prepare_native_data

    data = prepare_native_data(tmp_path / "ws", num_per_class=2, seed=0)
    out = tmp_path / "run"
    text = torchrun_two_ranks("configs/train/tiny_native.yaml", [
        *data.train_overrides(out), f"optim.deepspeed={ROOT / f'configs/deepspeed/{zero}.json'}", "optim.use_cpu=true",
        f"optim.batch_size={BATCH_SIZE}", "optim.num_epochs=1", "optim.logging_steps=1", *extra,
    ], tmp_path / "torchrun.log")
    return data, out, text


def test_two_ranks_zero3_save_whole_trained_full_components(tmp_path):
    import transformers as tf
    from safetensors.torch import load_file

    data, out, text = _torchrun_train(tmp_path, "zero3", ["optim.save_steps=100"])
    saved = load_file(str(out / "model" / "full.safetensors"))
    base = tf.AutoModelForImageTextToText.from_pretrained(data.base).state_dict()
    assert saved and all(name in base for name in saved), sorted(set(saved) - set(base))[:5]
    # Whole tensors that trained. (Every twin tensor is under zero3.json's stage3_param_persistence_threshold, so
    # ZeRO-3 keeps them unpartitioned: this shows the ZeRO-3 save path, not yet the gather of partitions.)
    assert all(saved[n].shape == base[n].shape for n in saved), [(n, saved[n].shape) for n in saved if saved[n].shape != base[n].shape][:3]
    assert any(not torch.equal(saved[n], base[n].to(saved[n].dtype)) for n in saved)  # the vision tower trained


def test_two_ranks_zero2_split_the_data_and_save_one_model(tmp_path):
    from emoreason.native.model import NativeModel

    data, out, text = _torchrun_train(tmp_path, "zero2", ["optim.save_steps=2"])
    num_samples = sum(1 for line in data.train.read_text().splitlines() if line.strip())  # 8 clips, all train
    # One epoch over 8 samples at 2 per rank on 2 ranks: 2 steps (a single process would take 4).
    steps = [json.loads(line.replace("'", '"')) for line in text.splitlines() if line.startswith("{'loss'")]
    assert len(steps) == num_samples // (BATCH_SIZE * 2), text[-2000:]
    # DeepSpeed's own checkpoint beside ours: one ZeRO optimizer-state partition per rank.
    partitions = sorted(p.name for p in (out / "checkpoint-2").glob("global_step2/*optim_states.pt"))
    assert partitions == ["zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"], partitions
    assert (out / "checkpoint-2" / "emoreason_checkpoint.json").is_file() and (out / "checkpoint-2" / "adapter").is_dir()
    model, _ = NativeModel.from_pretrained(out / "model")
    assert model.trainable_parameter_count() == 0  # loaded for inference
    assert (out / "model" / "emoreason_checkpoint.json").is_file()  # marked finished by rank 0 only
