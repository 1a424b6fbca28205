"""kill -9 while a checkpoint is being written, at several delays: every rerun resumes, the last one completes.

One output folder, one chain of `python -m emoreason.train.run` processes (tiny recipe, a checkpoint every step).
Each process is killed `delay` seconds after a new checkpoint's staging folder appears, i.e. while the Trainer
writes it (the model files, the optimizer, the RNG and trainer state) or just after; the next process must resume
from the newest checkpoint, which must be complete, and get as far as writing a later one. The last process runs
to the end.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emoreason.demo import TRAIN_CONFIG
from emoreason.train.checkpoints import STAGING_PREFIX, checkpoints_newest_first, incomplete_reason

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 8
DELAYS_S = [0.0, 0.01, 0.05, 0.2]
RUN_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from emoreason.demo import prepare_tiny_data

    return prepare_tiny_data(tmp_path_factory.mktemp("kill_workspace"), num_per_class=2, seed=0)


def command(data, out: Path) -> list[str]:
    overrides = data.train_overrides(out) + [
        f"optim.max_steps={MAX_STEPS}",
        "optim.save_steps=1",
        "optim.save_total_limit=2",
        "optim.batch_size=2",
        "optim.logging_steps=1",
    ]
    return [sys.executable, "-m", "emoreason.train.run", "--config", TRAIN_CONFIG, *overrides]


def staged_steps(out: Path, since_ns: int = 0) -> set[int]:
    """Steps of the staging folders in out created after since_ns (a rerun's own, not those a kill left)."""
    if not out.is_dir():
        return set()
    steps = set()
    for name in os.listdir(out):
        match = re.fullmatch(rf"{re.escape(STAGING_PREFIX)}checkpoint-(\d+)", name)
        try:
            if match and os.stat(out / name).st_ctime_ns > since_ns:
                steps.add(int(match.group(1)))
        except FileNotFoundError:  # published or removed since listdir
            pass
    return steps


def newest_step(out: Path) -> int:
    found = checkpoints_newest_first(out) if out.is_dir() else []
    return int(found[0].name.split("-")[1]) if found else 0


def start(data, out: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    return subprocess.Popen(command(data, out), cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def kill_during_next_checkpoint(proc: subprocess.Popen, out: Path, after_step: int, delay: float, log: Path) -> int:
    """SIGKILL `delay` s after the staging folder of a checkpoint newer than after_step appears; return its step."""
    started_ns = time.time_ns()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        newer = [s for s in staged_steps(out, started_ns) if s > after_step]
        if newer:
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return min(newer)
        if proc.poll() is not None:
            pytest.fail(f"training exited (rc {proc.returncode}) before a checkpoint after step {after_step}:\n{log.read_text()[-3000:]}")
        time.sleep(0.002)
    proc.kill()
    pytest.fail(f"no checkpoint after step {after_step} within {RUN_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def test_kill_during_checkpoint_writes_never_wedges_resume(data, tmp_path):
    out = tmp_path / "run"
    killed_mid_write = []
    resumed_from = 0
    for i, delay in enumerate(DELAYS_S):
        log = tmp_path / f"run{i}.log"
        proc = start(data, out, log)
        # The first run is killed while writing checkpoint-2, so that there is a checkpoint to resume from.
        killed_step = kill_during_next_checkpoint(proc, out, max(resumed_from, 1), delay, log)
        if resumed_from:
            assert f"resuming from {out / f'checkpoint-{resumed_from}'}" in log.read_text(), log.read_text()[-3000:]
        killed_mid_write.append(killed_step in staged_steps(out))
        # Whatever the kill interrupted, the newest checkpoint folder is a complete one.
        newest = newest_step(out)
        assert newest >= max(resumed_from, 1)
        assert incomplete_reason(out / f"checkpoint-{newest}") is None, f"delay {delay}: checkpoint-{newest}"
        resumed_from = newest
    assert any(killed_mid_write), "no kill landed while a checkpoint was being written; the test proved nothing"

    log = tmp_path / "final.log"
    proc = start(data, out, log)
    assert proc.wait(timeout=RUN_TIMEOUT_S) == 0, log.read_text()[-3000:]
    assert f"resuming from {out / f'checkpoint-{resumed_from}'}" in log.read_text()
    assert newest_step(out) == MAX_STEPS and incomplete_reason(out / f"checkpoint-{MAX_STEPS}") is None
    assert not staged_steps(out) and not list(out.glob(f"{STAGING_PREFIX}*"))

    # The final model's trained weights (what a NaN-corrupted resume would spoil) are there and finite.
    weights = {**load_file(out / "model" / "projectors.safetensors"), **load_file(out / "model" / "adapter" / "adapter_model.safetensors")}
    assert any("lora_" in k for k in weights) and all(torch.isfinite(t).all() for t in weights.values())
