"""What `emoreason train` says: one message (exit 2) instead of a traceback for unusable data, report_to
checked before any weights load, quiet bars off a terminal, and held-out accuracy logged during training."""

from __future__ import annotations

import io
import json

import pytest

from emoreason.demo import TRAIN_CONFIG
from emoreason.progress import PROGRESS_ENV, show_progress
from emoreason.train.config import load_train_config
from emoreason.train.run import main, setup, train


def overrides(data, out, *extra):
    return data.train_overrides(out) + ["optim.max_steps=2", "optim.batch_size=4", *extra]


def test_no_usable_samples_is_one_message(tiny_data, tmp_path, capfd):
    # Beside the prepped file, so prep's featurizer.json and the feature references still apply.
    stripped = tiny_data.train.parent / f"no-conversations-{tmp_path.name}.jsonl"
    lines = [json.loads(line) for line in tiny_data.train.read_text().splitlines() if line.strip()]
    stripped.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "conversations"}) + "\n" for r in lines))
    try:
        assert main(["--config", TRAIN_CONFIG, *overrides(tiny_data, tmp_path / "out", f"data.train={stripped}")]) == 2
    finally:
        stripped.unlink()
    err = capfd.readouterr().err
    assert f"emoreason train: error: {stripped}: no usable samples: all {len(lines)} were skipped (reasons above)" in err
    assert "no conversations (build them with `emoreason instruct`)" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["train", "eval"])
def test_a_missing_data_file_is_named_by_its_key(tiny_data, tmp_path, capfd, key):
    missing = tmp_path / "nowhere.jsonl"
    assert main(["--config", TRAIN_CONFIG, *overrides(tiny_data, tmp_path / "out", f"data.{key}={missing}")]) == 2
    err = capfd.readouterr().err
    assert f"key 'data.{key}': no such samples file: {missing}" in err
    assert "Traceback" not in err


def test_report_to_reaches_the_trainer_and_is_checked_before_weights_load(tiny_data, tmp_path, capfd):
    from transformers.integrations import get_available_reporting_integrations

    from emoreason.train.trainer import training_arguments

    cfg = load_train_config(TRAIN_CONFIG, overrides(tiny_data, tmp_path / "a", "optim.report_to=tensorboard"))
    assert cfg.optim.report_to == ["tensorboard"] and training_arguments(cfg).report_to == ["tensorboard"]
    default = load_train_config(TRAIN_CONFIG, overrides(tiny_data, tmp_path / "b"))
    assert training_arguments(default).report_to in ([], ["none"], "none")

    assert main(["--config", TRAIN_CONFIG, *overrides(tiny_data, tmp_path / "c", "optim.report_to=[tensorbored]")]) == 2
    assert "key 'optim.report_to': unknown integration 'tensorbored'" in capfd.readouterr().err
    if "tensorboard" not in get_available_reporting_integrations():
        assert main(["--config", TRAIN_CONFIG, *overrides(tiny_data, tmp_path / "d", "optim.report_to=tensorboard")]) == 2
        assert "key 'optim.report_to': 'tensorboard' is not installed here" in capfd.readouterr().err
    assert not any((tmp_path / d).exists() for d in "cd")


def test_bars_draw_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert show_progress(Terminal()) and not show_progress(io.StringIO())
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert not show_progress(Terminal())
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert show_progress(io.StringIO())


@pytest.mark.slow
def test_held_out_accuracy_is_logged_at_each_evaluation(tiny_data, tmp_path):
    from emoreason.train.heldout import score_samples

    slice_size = 8
    cfg = load_train_config(TRAIN_CONFIG, overrides(
        tiny_data, tmp_path, f"data.eval={tiny_data.heldout}", "optim.eval_steps=1",
        f"optim.eval_generate_samples={slice_size}", "optim.logging_steps=1",
    ))
    run = setup(cfg)
    train(run)
    scored = [h for h in run.trainer.state.log_history if "eval_accuracy" in h]
    assert [h["step"] for h in scored] == [1, 2]
    assert all(h["eval_scored"] == slice_size and 0 <= h["eval_unmatched"] <= slice_size for h in scored)
    assert any("eval_loss" in h and h["step"] == 2 for h in run.trainer.state.log_history)

    # The last evaluation saw the final weights: scoring the same slice again gives the same numbers.
    labels = sorted({s.targets.emotion for s in run.train_dataset.samples})
    again = score_samples(run.model, run.processor, run.eval_dataset.samples[:slice_size], run.eval_dataset.features, labels,
                          cfg.optim.eval_max_new_tokens)
    assert (round(again.accuracy, 4), again.unmatched) == (scored[-1]["eval_accuracy"], scored[-1]["eval_unmatched"])
