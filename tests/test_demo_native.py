"""`emoreason demo --kind native` end to end at a tiny size (4 clips per class, every 4th round of classes held out):
data, training, held-out accuracy with and without the clips, export, infer and eval, and the figures in
demo_report.json (the learning itself is shown by the full demo: docs/native.md)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_native_demo_runs_end_to_end_and_reports_both_accuracies(tmp_path, capsys):
    from emoreason.demo import main

    workdir = tmp_path / "demo_native"
    assert main(["--kind", "native", "--workdir", str(workdir), "--num-per-class", "4",
                 "--train", "optim.max_steps=2", "optim.batch_size=4", "optim.logging_steps=1"]) == 0
    report = json.loads((workdir / "demo_report.json").read_text())
    assert report["kind"] == "native" and report["chance"] == 0.25
    assert report["heldout_clips"] > 0
    for key in ("accuracy_with_media", "accuracy_without_media"):
        assert 0.0 <= report[key] <= 1.0
    predictions = [json.loads(line) for line in open(report["predictions"])]
    heldout = [json.loads(line) for line in open(workdir / "data" / "heldout.jsonl")]
    assert len(predictions) == len(heldout) == report["heldout_clips"]
    assert (workdir / "export" / "model.safetensors").is_file()
    out = capsys.readouterr().out
    assert "with media:" in out and "without media:" in out and "tiny-native-demo" in out
