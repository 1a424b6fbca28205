"""Damaged cached features and a diverging loss stop training with an error that names the cause.

One small prepped workspace (8 synthetic clips, tiny encoders and LLM); each test leaves it healthy.
"""

from __future__ import annotations

import contextlib
import shutil

import pytest
import torch

from emoreason.demo import TRAIN_CONFIG, prepare_tiny_data
from emoreason.features.cache import FeatureFileError, read_feature_file
from emoreason.jsonl import read_complete_records
from emoreason.schema import load_samples
from emoreason.train.config import load_train_config
from emoreason.train.run import main, setup, train
from emoreason.train.trainer import NonFiniteLossError
from feature_files import FP16_NAN, break_header, overwrite_data

NUM_PER_CLASS = 2


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("faults_workspace")
    return workdir, prepare_tiny_data(workdir, num_per_class=NUM_PER_CLASS, seed=0)


def overrides(data, out, *extra):
    return data.train_overrides(out) + ["optim.max_steps=1", "optim.batch_size=4", *extra]


def first_audio_feature(data):
    sample = load_samples(data.train)[0]
    return sample, data.train.parent / sample.features["audio"].path


@contextlib.contextmanager
def restored_afterwards(path, tmp_path):
    """The file at `path` put back as it is now (bytes and times) when the block ends, whatever the block did to it:
    how a test damages the shared workspace and leaves it healthy. Yields the backup copy."""
    backup = tmp_path / f"backup{path.suffix}"
    shutil.copy2(path, backup)
    try:
        yield backup
    finally:
        shutil.copy2(backup, path)


def test_nan_feature_file_refused_before_step_1_then_prep_rerun_recomputes_it(workspace, tmp_path, capfd):
    workdir, data = workspace
    sample, path = first_audio_feature(data)
    original = read_feature_file(path)[0]
    other = data.train.parent / load_samples(data.train)[1].features["audio"].path
    other_mtime = other.stat().st_mtime_ns
    overwrite_data(path, 0, FP16_NAN)

    out = tmp_path / "run"
    assert main(["--config", TRAIN_CONFIG, *overrides(data, out)]) == 2
    err = capfd.readouterr().err
    assert f"{path}: 1 of {original.numel()} values are NaN or infinite [samples: {sample.id} (audio)]" in err
    assert "Re-run `emoreason prep` into the same output folder" in err
    assert not out.exists(), "training got as far as its output folder"

    prepare_tiny_data(workdir, num_per_class=NUM_PER_CLASS, seed=0)  # the same prep command again
    err = capfd.readouterr().err
    assert "prep: 1 cached feature file(s) of finished samples are damaged; redoing 1 sample(s)" in err
    assert f"{path}: 1 of {original.numel()} values are NaN" in err
    assert torch.equal(read_feature_file(path)[0], original), "recomputed features differ from the first prep's"
    assert other.stat().st_mtime_ns == other_mtime, "an intact feature file was recomputed"
    ids = [r["id"] for r in read_complete_records(data.train.parent / "samples.jsonl")]
    assert len(ids) == len(set(ids)) == 4 * NUM_PER_CLASS

    assert main(["--config", TRAIN_CONFIG, *overrides(data, out)]) == 0
    assert (out / "model").is_dir()


def test_corrupt_header_is_named_up_front_and_mid_run(workspace, tmp_path, capfd):
    _, data = workspace
    sample, path = first_audio_feature(data)
    with restored_afterwards(path, tmp_path) as backup:
        break_header(path)
        assert main(["--config", TRAIN_CONFIG, *overrides(data, tmp_path / "refused")]) == 2
        err = capfd.readouterr().err
        assert f"{path}: unreadable safetensors file" in err and sample.id in err

        # Damaged after the up-front check: the first batch that reads it names the file and the sample.
        shutil.copy(backup, path)
        run = setup(load_train_config(TRAIN_CONFIG, overrides(data, tmp_path / "mid_run", "optim.batch_size=8")))
        break_header(path)
        with pytest.raises(FeatureFileError, match=f"{path} \\(sample {sample.id}\\): unreadable safetensors file"):
            train(run)


def test_non_finite_loss_stops_at_its_step_naming_the_batch(workspace, tmp_path):
    _, data = workspace
    run = setup(load_train_config(TRAIN_CONFIG, overrides(data, tmp_path, "optim.max_steps=3")))
    with torch.no_grad():
        next(run.model.projectors.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss \(nan\) at step 1; batch samples: \[") as info:
        train(run)
    train_ids = {s.id for s in load_samples(data.train)}
    named = [i for i in train_ids if f"'{i}'" in str(info.value)]
    assert len(named) == 4, f"expected the batch's 4 sample ids in: {info.value}"
    assert not list(tmp_path.glob("checkpoint-*")) and not (tmp_path / "model").exists()


def test_missing_feature_file_is_one_message(workspace, tmp_path, capfd):
    _, data = workspace
    sample, path = first_audio_feature(data)
    with restored_afterwards(path, tmp_path):
        path.unlink()
        assert main(["--config", TRAIN_CONFIG, *overrides(data, tmp_path / "run")]) == 2
    err = capfd.readouterr().err
    assert f"{data.train}: 1 cached feature file(s) are missing or damaged:\n  {path}: file not found [samples: {sample.id} (audio)]" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
