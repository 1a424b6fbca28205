"""`emoreason train` in subprocesses, for either kind's GRPO tests: resume after a kill (SIGKILL a run once a
checkpoint is complete, re-run the same command, compare its per-step log with an uninterrupted run's), and
torchrun with two ranks on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emoreason.train.checkpoints import checkpoints_newest_first

ROOT = Path(__file__).resolve().parents[1]
ENV = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
# What one GRPO step logs that must come out the same when the step is taken after a resume.
STEP_KEYS = ("loss", "reward", "grad_norm")


def train_command(config: str, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "emoreason.train.run", "--config", config, *overrides]


def resume_after_kill(command: list[str], out: Path, kill_after: int, timeout: float = 900) -> str:
    """Run `command`, SIGKILL it once checkpoint-<kill_after> in `out` is complete, run it again to the end;
    returns the second run's stderr (which names the checkpoint it resumed from)."""
    proc = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not (out / f"checkpoint-{kill_after}" / "emoreason_checkpoint.json").exists():
        assert proc.poll() is None, "the run ended before its checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoints_newest_first(out)[0].name == f"checkpoint-{kill_after}", "killed too late: a later checkpoint exists"
    resumed = subprocess.run(command, cwd=ROOT, env=ENV, timeout=timeout, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / f'checkpoint-{kill_after}'}" in resumed.stderr, resumed.stderr[-3000:]
    return resumed.stderr


def step_logs(checkpoint: Path) -> dict[int, dict]:
    """step -> what that GRPO step logged, from a checkpoint's trainer state."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return {h["step"]: h for h in state["log_history"] if "reward" in h}


def assert_same_steps(whole: dict[int, dict], resumed: dict[int, dict], steps, tolerance: float = 1e-4) -> None:
    for step in steps:
        for key in STEP_KEYS:
            assert resumed[step][key] == pytest.approx(whole[step][key], abs=tolerance), (step, key, whole[step], resumed[step])


def torchrun_two_ranks(config: str, overrides: list[str], log: Path, timeout: float = 900) -> str:
    """`emoreason train` on two CPU ranks (torchrun --standalone); returns the log of both, asserting they succeeded."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "emoreason.train.run", "--config", config, *overrides]
    with log.open("w") as f:
        proc = subprocess.run(command, cwd=ROOT, env=ENV, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
    text = log.read_text()
    assert proc.returncode == 0, f"torchrun exited {proc.returncode}; log tail:\n{text[-4000:]}"
    return text
