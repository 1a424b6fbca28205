"""Stage grpo on the native kind: two GRPO steps on the tiny Qwen2.5-VL twin from a briefly supervised native
model; the label reward is logged each step, only the fresh LoRA moves, the KL to the adapter-disabled reference
is 0 at step 0, and the saved model directory loads and answers through the hf engine. A judge that goes down
mid-run stops it with the step named and the checkpoint kept, and the re-run resumes; a run killed after a
checkpoint resumes to the uninterrupted run's numbers; two torchrun ranks take a GRPO step on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fake_judge import FakeJudge
from serving_helpers import running_server
from train_launch import assert_same_steps, resume_after_kill, step_logs, torchrun_two_ranks, train_command
from transformers import TrainerCallback

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


def native_grpo_overrides(native_start, out: Path, *extra: str, train: Path | None = None) -> list[str]:
    data, init = native_start
    # One input cache for the module's runs: each clip's media are processed once (entries are keyed by content).
    return [f"init_from={init}", f"data.train={train or data.train}", f"optim.output_dir={out}",
            f"data.input_cache={data.train.parent / 'input_cache'}", *extra]


def native_grpo_run(overrides: list[str], judge=None):
    """The native GRPO run of CONFIG with these overrides, set up in this process (nothing trained yet)."""
    from emoreason.train.kinds import load_any_train_config
    from emoreason.train.native_grpo_run import setup_native_grpo

    return setup_native_grpo(load_any_train_config(CONFIG, overrides), judge=judge)


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


class _AtStepEnd(TrainerCallback):
    def __init__(self, step: int, action):
        self.step, self.action = step, action

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            self.action()


def _with_reasoning(train: Path) -> Path:
    """The training samples with a reference explanation (targets.reasoning), which the judge reward scores against;
    written beside them, since media paths are relative to the samples file."""
    rows = [json.loads(line) for line in train.read_text().splitlines() if line.strip()]
    for row in rows:
        row["targets"]["reasoning"] = f"the face and the voice both show {row['targets']['emotion']}"
    path = train.with_name("train_reasoning.jsonl")
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_judge_down_mid_run_stops_naming_the_step_keeps_the_checkpoint_and_the_rerun_resumes(native_start, tmp_path, capsys):
    import re

    from emoreason.train.checkpoints import incomplete_reason
    from emoreason.train.grpo_rewards import JudgeDownError, JudgeReward
    from emoreason.train.native_grpo_run import train_native_grpo

    out = tmp_path / "grpo"
    keys = native_grpo_overrides(native_start, out, "optim.max_steps=3", "optim.save_steps=100", "grpo.rewards=[label,judge]",
                                 "grpo.judge.model=judge", f"grpo.judge.cache={tmp_path / 'judge.sqlite'}", "grpo.judge.max_retries=1",
                                 train=_with_reasoning(native_start[0].train))
    down = False
    judge = FakeJudge(lambda n, body: 503 if down else "Clues overlap.\nScore: 7")

    def go_down():
        nonlocal down
        down = True

    with running_server(judge.app()) as url:
        run = native_grpo_run([*keys, f"grpo.judge.base_url={url}/v1"])
        run.trainer.add_callback(_AtStepEnd(1, go_down))
        expected = rf"at step 2: judge {re.escape(url)}/v1 failed on .*; checkpoint-1 kept in {re.escape(str(out))}, re-run"
        with pytest.raises(JudgeDownError, match=expected):
            train_native_grpo(run)
    (reward,) = [r for r in run.trainer.reward_funcs if isinstance(r, JudgeReward)]
    assert reward.judge.stats.retries > 0  # the client retried before the run gave up
    assert incomplete_reason(out / "checkpoint-1") is None and not (out / "model").exists()

    # The judge is back, at another address: the same command with that key changed resumes from the kept checkpoint.
    capsys.readouterr()
    with running_server(FakeJudge().app()) as url:
        run = native_grpo_run([*keys, f"grpo.judge.base_url={url}/v1"])
        final = train_native_grpo(run)
    assert f"resuming from {out / 'checkpoint-1'}" in capsys.readouterr().err
    assert [h["step"] for h in run.trainer.state.log_history if "reward" in h] == [1, 2, 3]
    assert (final / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_resume_after_a_kill_matches_the_uninterrupted_run(native_start, tmp_path):
    from emoreason.train.native_grpo_run import train_native_grpo

    resume = ["optim.max_steps=4", "optim.save_steps=2", "optim.save_total_limit=3"]
    whole = tmp_path / "whole"
    # The uninterrupted run in this process (no interpreter start): on CPU the same steps give the same numbers.
    train_native_grpo(native_grpo_run(native_grpo_overrides(native_start, whole, *resume)))
    killed = tmp_path / "killed"
    resume_after_kill(train_command(CONFIG, native_grpo_overrides(native_start, killed, *resume)), killed, kill_after=2)
    whole_logs = step_logs(whole / "checkpoint-4")
    print(f"\nuninterrupted native GRPO steps 3-4: {[{k: whole_logs[s][k] for k in ('loss', 'reward', 'grad_norm')} for s in (3, 4)]}")
    assert_same_steps(whole_logs, step_logs(killed / "checkpoint-4"), steps=(3, 4))


@pytest.mark.slow
def test_torchrun_two_ranks_take_one_native_grpo_step(native_start, tmp_path):
    out = tmp_path / "dist"
    # 4 completions a rank: one prompt group of 4 on each of the two ranks.
    torchrun_two_ranks(CONFIG, native_grpo_overrides(native_start, out, "optim.max_steps=1", "optim.batch_size=4"),
                       tmp_path / "torchrun.log")
    assert (out / "model" / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "model" / "emoreason_checkpoint.json").read_text())["step"] == 1
