"""A run folder is trained once: a finished one is refused (or trained anew with --overwrite), an unfinished one
resumes only under the config it started with; the run tells its user what it does (summary, loss curve, quiet
logs off a terminal).

One real `emoreason train` subprocess (2 steps on the tiny recipe, stdout and stderr piped: not a terminal)
makes the finished run every test reads; tests that change a run work on a copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emoreason.demo import TRAIN_CONFIG
from emoreason.progress import PROGRESS_ENV
from emoreason.train.run import main

ROOT = Path(__file__).resolve().parents[1]
STEPS = 2


def overrides(data, out: Path, *extra: str) -> list[str]:
    return data.train_overrides(out) + [f"optim.max_steps={STEPS}", "optim.batch_size=4", "optim.logging_steps=1", *extra]


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under folder (the weights, the tokenizer, the record)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run_folder") / "tiny-run"
    env = {k: v for k, v in os.environ.items() if k != PROGRESS_ENV} | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "emoreason.train.run", "--config", TRAIN_CONFIG, *overrides(tiny_data, out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


def test_startup_summary_names_samples_parameters_tokens_and_steps(finished, tiny_data):
    _, proc = finished
    kept = sum(1 for line in tiny_data.train.read_text().splitlines() if line.strip())
    assert f"emoreason train: train: {kept} samples kept, 0 skipped ({tiny_data.train})" in proc.stdout
    assert "emoreason train: trainable parameters: " in proc.stdout and "LoRA " in proc.stdout
    assert "emoreason train: tokens per step: ~" in proc.stdout and "(4 samples = batch 4 x grad_accum 1 x 1 process(es)" in proc.stdout
    assert f"emoreason train: steps: {STEPS} (max_steps); starting at step 0" in proc.stdout
    # The summary comes before the first logged loss.
    assert proc.stdout.index("tokens per step") < proc.stdout.index("'loss'")


def test_progress_bars_are_quiet_off_a_terminal(finished):
    _, proc = finished
    assert "\r" not in proc.stderr and "\r" not in proc.stdout, "a progress bar redrew its line into a piped log"
    assert "it/s" not in proc.stderr and "s/it" not in proc.stderr
    assert proc.stdout.count("'loss'") == STEPS, "each logged loss is one plain line"


def test_loss_curve_png_carries_the_run_name(finished):
    from PIL import Image

    out, proc = finished
    curve = out / "loss_curve.png"
    assert f"loss curve: {curve}" in proc.stdout
    with Image.open(curve) as image:
        assert image.format == "PNG" and image.info["Title"] == "tiny-run: loss"


def test_second_train_into_a_finished_run_changes_nothing(finished, tiny_data, capfd):
    out, _ = finished
    before = digest(out)
    assert {"model/projectors.safetensors", "model/adapter/adapter_model.safetensors", "train_config.yaml"} <= set(before)
    for extra in ([], ["optim.learning_rate=1e-4"]):
        assert main(["--config", TRAIN_CONFIG, *overrides(tiny_data, out, *extra)]) == 2
        err = capfd.readouterr().err
        assert f"emoreason train: error: {out} holds a finished run ({out / 'model'})" in err
        assert "--overwrite" in err and "Traceback" not in err
        assert digest(out) == before, "a refused run changed the folder"


@pytest.mark.slow
def test_overwrite_trains_anew_and_records_the_new_config(finished, tiny_data, tmp_path, capfd):
    out = tmp_path / "again"
    shutil.copytree(finished[0], out)
    (out / "checkpoint-1").mkdir()  # a leftover of the old run, which the new one must not keep
    before = digest(out)
    assert main(["--config", TRAIN_CONFIG, "--overwrite", *overrides(tiny_data, out, "optim.learning_rate=1e-4")]) == 0
    assert "--overwrite: removing the previous run" in capfd.readouterr().err
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["optim"]["learning_rate"] == 1e-4 and saved["optim"]["overwrite"] is True
    after = digest(out)
    assert after["model/projectors.safetensors"] != before["model/projectors.safetensors"]
    assert not (out / "checkpoint-1").exists()


@pytest.mark.slow
def test_an_unfinished_run_resumes_only_under_its_own_config(finished, tiny_data, tmp_path, capfd):
    out = tmp_path / "unfinished"
    shutil.copytree(finished[0], out)
    shutil.rmtree(out / "model")  # stopped after its last checkpoint: no final model
    assert (out / f"checkpoint-{STEPS}").is_dir()
    record = (out / "train_config.yaml").read_bytes()

    assert main(["--config", TRAIN_CONFIG, *overrides(tiny_data, out, "optim.learning_rate=1e-4")]) == 2
    err = capfd.readouterr().err
    assert "cannot resume this unfinished run: key 'optim.learning_rate' is 0.0001 here but 0.003 in its" in err
    assert (out / "train_config.yaml").read_bytes() == record and not (out / "model").exists()

    assert main(["--config", TRAIN_CONFIG, *overrides(tiny_data, out, "optim.resume=false")]) == 2
    assert "holds an unfinished run (checkpoint-2) and optim.resume is false" in capfd.readouterr().err

    # More steps may be asked for: the run continues from its checkpoint; the record keeps what it started with.
    assert main(["--config", TRAIN_CONFIG, *overrides(tiny_data, out, f"optim.max_steps={STEPS + 1}")]) == 0
    err = capfd.readouterr().err
    assert f"resuming from {out / f'checkpoint-{STEPS}'}" in err
    assert f"resuming with optim.max_steps={STEPS + 1} (the run started with {STEPS}" in err
    assert (out / "train_config.yaml").read_bytes() == record
    assert (out / f"checkpoint-{STEPS + 1}").is_dir() and (out / "model" / "emoreason_checkpoint.json").is_file()
