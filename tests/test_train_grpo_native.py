"""Stage grpo on the native kind: two GRPO steps on the tiny Qwen2.5-VL twin from a briefly supervised native
model; the label reward is logged each step, only the fresh LoRA moves, the KL to the adapter-disabled reference
is 0 at step 0, and the saved model directory loads and answers through the hf engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

CONFIG = "configs/train/tiny_native_grpo.yaml"


@pytest.fixture(scope="module")
def native_start(tmp_path_factory):
    """The tiny native recipe for 6 steps on 8 clips at a high learning rate: a native model directory (LLM LoRA,
    full components) that already answers with label words, so a group's label rewards differ and GRPO has a gradient."""
    from emoreason.demo_native import prepare_native_data, train_native

    data = prepare_native_data(tmp_path_factory.mktemp("native_grpo_ws"), num_per_class=2, seed=0)
    final = train_native(data, tmp_path_factory.mktemp("native_sft") / "run", ["optim.max_steps=6", "optim.batch_size=4",
                                                                                     "optim.learning_rate=0.01"])
    return data, final


def test_two_grpo_steps_log_the_reward_and_train_only_the_lora(native_start, tmp_path):
    from emoreason.train.kinds import load_any_train_config
    from emoreason.train.native_config import NativeTrainConfig
    from emoreason.train.native_grpo_run import setup_native_grpo, train_native_grpo

    data, init = native_start
    out = tmp_path / "grpo"
    cfg = load_any_train_config(CONFIG, [f"init_from={init}", f"data.train={data.train}", f"optim.output_dir={out}",
                                         "optim.max_steps=2", "grpo.beta=0.1"])
    assert isinstance(cfg, NativeTrainConfig) and cfg.model.base  # the model block came from init_from
    run = setup_native_grpo(cfg)
    trainable = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    frozen_before = {n: p.detach().clone() for n, p in run.model.named_parameters() if not p.requires_grad}
    lora_before = {n: p.detach().clone() for n, p in run.model.named_parameters() if p.requires_grad}

    final = train_native_grpo(run)
    logs = [h for h in run.trainer.state.log_history if "reward" in h]
    print(f"\nnative GRPO logs: {[{k: h[k] for k in ('step', 'rewards/label/mean', 'reward_std', 'kl')} for h in logs]}")
    assert [h["step"] for h in logs] == [1, 2]
    assert all(0.0 <= h["rewards/label/mean"] <= 1.0 for h in logs)
    assert logs[0]["kl"] == pytest.approx(0.0, abs=1e-7)  # the fresh LoRA is zero: the policy is the reference
    after = dict(run.model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen_before.items()), "a frozen parameter moved"
    assert any(h["reward_std"] > 0 for h in logs), "every group's rewards were equal: no advantage, nothing to learn"
    assert any(not torch.equal(after[n], v) for n, v in lora_before.items()), "no LoRA parameter moved"

    assert (final / "emoreason_native.json").is_file() and (final / "adapter" / "adapter_model.safetensors").is_file()
    assert not (final / "full.safetensors").exists()  # nothing but the GRPO LoRA trained
    from emoreason.demo_native import heldout_accuracy

    accuracy, total, _ = heldout_accuracy(final, Path(data.train), data.labels)
    assert total == 8 and 0.0 <= accuracy <= 1.0


def test_native_grpo_config_errors_name_the_key(tmp_path):
    from emoreason.config import ConfigError
    from emoreason.train.kinds import load_any_train_config

    paths = [f"data.train={tmp_path / 'train.jsonl'}", f"optim.output_dir={tmp_path / 'out'}"]
    with pytest.raises(ConfigError, match="init_from"):  # stage grpo starts from a supervised model
        load_any_train_config(CONFIG, paths + ["model.base=some/backbone"])
    with pytest.raises(ConfigError, match="key 'init_from'.*not a native model directory"):
        load_any_train_config(CONFIG, paths + [f"init_from={tmp_path}"])
    with pytest.raises(ConfigError, match="grpo"):  # a grpo block is read by stage grpo only
        load_any_train_config("configs/train/tiny_native.yaml", paths + ["model.base=some/backbone", "grpo.rewards=[label]"])
