"""Stop after N steps, resume, and land where an uninterrupted run lands (tiny recipe, one CPU process).

Run A trains 2N steps straight. Run B trains N steps (leaving checkpoint-N), then the same command with
max_steps=2N and resume=true continues from checkpoint-N. The learning rate is constant with no warm-up, since a
schedule that depends on max_steps would differ between B's two halves and A.

N = 4 with 24 samples at batch 8 (3 steps an epoch) stops one batch into epoch 2, so the resumed run must also
skip the batches epoch 2 already used and reshuffle exactly as A did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from transformers import TrainerCallback

pytestmark = pytest.mark.slow

N = 4
# Measured on CPU (fp32, 1 process): resumed and uninterrupted losses agree bit for bit. The tolerance leaves room
# for other CPUs' kernels, and is ~4 orders of magnitude below a one-step loss change (~0.3 here).
LOSS_ATOL = 1e-5


class StepRecorder(TrainerCallback):
    """The global_step after every optimiser step this trainer ran itself."""

    def __init__(self):
        self.steps: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from emoreason.demo import prepare_tiny_data

    return prepare_tiny_data(tmp_path_factory.mktemp("resume_workspace"), num_per_class=8, seed=0)


def run_training(data, output_dir: Path, max_steps: int, resume: bool) -> tuple[list[int], list[dict]]:
    """Train like `emoreason train`; return (steps this call ran, trainer.state.log_history)."""
    from emoreason.demo import TRAIN_CONFIG
    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup, train

    overrides = data.train_overrides(output_dir) + [
        f"optim.max_steps={max_steps}",
        f"optim.save_steps={N}",
        "optim.save_total_limit=null",
        "optim.logging_steps=1",
        "optim.lr_scheduler=constant",
        "optim.warmup_ratio=0",
        "optim.batch_size=8",
        f"optim.resume={str(resume).lower()}",
    ]
    run = setup(load_train_config(TRAIN_CONFIG, overrides))
    recorder = StepRecorder()
    run.trainer.add_callback(recorder)
    train(run)
    return recorder.steps, run.trainer.state.log_history


def losses(log_history: list[dict]) -> dict[int, float]:
    steps = [h["step"] for h in log_history if "loss" in h]
    assert len(steps) == len(set(steps)), f"a step was logged twice: {steps}"
    return {h["step"]: h["loss"] for h in log_history if "loss" in h}


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("resume_runs")
    straight = run_training(data, out / "a", 2 * N, resume=False)
    first_half = run_training(data, out / "b", N, resume=False)
    assert (out / "b" / f"checkpoint-{N}").is_dir()
    # A run stopped after checkpoint-N has no final model; a finished one is refused rather than resumed.
    shutil.rmtree(out / "b" / "model")
    second_half = run_training(data, out / "b", 2 * N, resume=True)
    return {"a": straight, "b1": first_half, "b2": second_half, "b_dir": out / "b"}


def test_resumed_run_continues_after_step_n(runs):
    steps_a, _ = runs["a"]
    steps_b1, _ = runs["b1"]
    steps_b2, log_b2 = runs["b2"]
    assert steps_a == list(range(1, 2 * N + 1))
    assert steps_b1 == list(range(1, N + 1))
    assert steps_b2 == list(range(N + 1, 2 * N + 1)), "the resumed run redid or skipped steps"
    state = json.loads((runs["b_dir"] / f"checkpoint-{2 * N}" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 * N
    # Steps 1..N come from checkpoint-N's restored state, N+1..2N from this run: each exactly once.
    assert sorted(losses(log_b2)) == list(range(1, 2 * N + 1))


def test_resumed_losses_match_the_uninterrupted_run(runs):
    loss_a = losses(runs["a"][1])
    loss_b1 = losses(runs["b1"][1])
    loss_b2 = losses(runs["b2"][1])
    # Same start: the first halves are the same computation.
    for step in range(1, N + 1):
        assert loss_b1[step] == pytest.approx(loss_a[step], abs=LOSS_ATOL), f"step {step}"
    for step in range(N + 1, 2 * N + 1):
        assert loss_b2[step] == pytest.approx(loss_a[step], abs=LOSS_ATOL), (
            f"step {step}: resumed {loss_b2[step]} vs uninterrupted {loss_a[step]} (abs tolerance {LOSS_ATOL})"
        )
    # Not vacuous: the loss moves by far more than the tolerance over these steps.
    assert max(loss_a.values()) - min(loss_a.values()) > 1000 * LOSS_ATOL
