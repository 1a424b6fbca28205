"""`emoreason infer`: one line per sample, labels parsed or null, bad samples reported, resumable."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serving_models import exported_model_dir

from emoreason.labels import extract_label
from emoreason.schema import load_samples, write_samples
from emoreason.serving.infer import default_prompt, main, sample_request

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tiny_data, tmp_path_factory):
    return exported_model_dir(tiny_data, tmp_path_factory)


@pytest.fixture(scope="module")
def data_root(tiny_data):
    return tiny_data.train.parent.parent / "data"


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def infer(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def cache_predictions(tiny_data, exported, tmp_path_factory):
    out = tmp_path_factory.mktemp("infer") / "predictions.jsonl"
    assert infer("--model", exported, "--input", tiny_data.heldout, "--out", out, "--feature-source", "cache", "--max-tokens", 8) == 0
    return out


def test_cache_run_predicts_every_id_once_with_parsed_or_null_labels(tiny_data, cache_predictions, exported, capsys):
    ids = [s.id for s in load_samples(tiny_data.heldout)]
    records = read_lines(cache_predictions)
    assert [r["id"] for r in records] == ids
    for r in records:
        assert set(r) == {"id", "text", "label"}
        assert r["label"] == extract_label(r["text"], tiny_data.labels)  # the default labels: sorted targets
    assert any(r["label"] is not None for r in records), "no answer named a label; parsing went untested"
    # A finished job re-run appends nothing.
    before = cache_predictions.read_bytes()
    assert infer("--model", exported, "--input", tiny_data.heldout, "--out", cache_predictions, "--feature-source", "cache") == 0
    assert cache_predictions.read_bytes() == before
    assert f"{len(ids)} already in" in capsys.readouterr().out


def test_live_matches_cache_and_bad_samples_get_error_lines(tiny_data, cache_predictions, exported, data_root, tmp_path, media_dir):
    # Live features are rounded to fp16 like the cache, so both paths give the same answers.
    root = tmp_path / "data"
    root.mkdir()
    (root / "clips").symlink_to(data_root / "clips")
    (root / "not_media.mp4").write_bytes((media_dir / "not_media.mp4").read_bytes())
    good = load_samples(tiny_data.heldout)[:4]
    bad = [
        {"id": "not_media", "media": {"video": "not_media.mp4"}},
        {"id": "gone", "media": {"video": "clips/gone.mp4"}},
    ]
    input_path = tmp_path / "samples.jsonl"
    lines = [json.dumps(s.to_json()) for s in good[:2]] + [json.dumps(b) for b in bad] + [json.dumps(s.to_json()) for s in good[2:]]
    input_path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "predictions.jsonl"
    assert infer("--model", exported, "--input", input_path, "--out", out, "--data-root", root, "--max-tokens", 8, "--batch-size", 3) == 0

    records = {r["id"]: r for r in read_lines(out)}
    assert sorted(records) == sorted([s.id for s in good] + ["not_media", "gone"])
    assert records["not_media"]["error"]["reason"] == "not_media"
    assert records["gone"]["error"]["reason"] == "missing_file"
    cached = {r["id"]: r for r in read_lines(cache_predictions)}
    for s in good:
        assert records[s.id] == cached[s.id]


def test_default_prompt_for_samples_without_conversations(tiny_data, exported, data_root, tmp_path, capsys):
    samples = [s.model_copy(update={"conversations": None}) for s in load_samples(tiny_data.heldout)[:6]]
    prompt = default_prompt(samples[0], ["happy", "sad"], ["audio", "face"])
    assert prompt.splitlines()[0] == "<audio> <face>"
    assert f'"{samples[0].subtitle}"' in prompt and prompt.endswith("one label from: happy, sad.")

    input_path = tmp_path / "bare.jsonl"
    write_samples(input_path, samples)
    out = tmp_path / "predictions.jsonl"
    assert infer("--model", exported, "--input", input_path, "--out", out, "--data-root", data_root, "--labels", "happy,sad") == 0
    records = read_lines(out)
    assert [r["id"] for r in records] == [s.id for s in samples]
    assert all(r["label"] == extract_label(r["text"], ["happy", "sad"]) for r in records)

    unlabelled = tmp_path / "unlabelled.jsonl"
    write_samples(unlabelled, [s.model_copy(update={"targets": None}) for s in samples])
    assert infer("--model", exported, "--input", unlabelled, "--out", tmp_path / "none.jsonl", "--data-root", data_root) == 2
    assert "--labels" in capsys.readouterr().err


def test_prompt_stops_at_the_last_user_turn(tiny_data, data_root):
    sample = load_samples(tiny_data.heldout)[0]
    request = sample_request(sample, tiny_data.labels, ["audio"], data_root, max_tokens=5)
    assert [m["role"] for m in request.messages] == ["user"]  # the assistant answer is what we predict
    assert request.messages[0]["content"] == sample.conversations[0].content
    assert [(m.kind, m.path) for m in request.media] == [("video", data_root / sample.media.video)]
    assert request.temperature == 0 and request.max_tokens == 5


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_backend_without_vllm_says_how_to_install(tiny_data, exported, tmp_path, capsys):
    code = infer("--model", exported, "--input", tiny_data.heldout, "--out", tmp_path / "p.jsonl", "--backend", "vllm")
    assert code == 2 and "pip install -e .[serve" in capsys.readouterr().err


def test_resume_after_kill_loses_and_duplicates_nothing(tiny_data, exported, data_root, tmp_path):
    samples = load_samples(tiny_data.heldout)[:12]
    input_path = tmp_path / "samples.jsonl"
    write_samples(input_path, samples)
    out = tmp_path / "predictions.jsonl"
    args = ["--model", exported, "--input", input_path, "--out", out, "--data-root", data_root, "--batch-size", 1, "--max-tokens", 8]
    proc = subprocess.Popen(
        [sys.executable, "-m", "emoreason.serving.infer", *map(str, args)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_text().count("\n") >= 3):
            assert proc.poll() is None, "infer exited before it could be killed"
            assert time.monotonic() < deadline, "infer wrote nothing within 120 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    written = out.read_text()
    complete = written[: written.rfind("\n") + 1]
    assert complete.count("\n") < len(samples), "the kill came too late to test resuming"
    with open(out, "a") as f:
        f.write('{"id": "syn_0')  # a line torn mid-write

    assert infer(*args) == 0
    final = out.read_text()
    assert final.startswith(complete)
    ids = [r["id"] for r in read_lines(out)]
    assert sorted(ids) == sorted(s.id for s in samples) and len(ids) == len(set(ids))


def test_a_garbled_line_mid_file_is_reported_and_its_sample_redone(tiny_data, cache_predictions, exported, tmp_path, capsys):
    lines = cache_predictions.read_text().splitlines(keepends=True)
    original = json.loads(lines[3])
    lines[3] = lines[3][:12] + "\x00 garbled by a bad disk block\n"
    out = tmp_path / "predictions.jsonl"
    out.write_text("".join(lines))

    assert infer("--model", exported, "--input", tiny_data.heldout, "--out", out, "--feature-source", "cache", "--max-tokens", 8) == 0
    assert f"{out} line 4: not valid JSON" in capsys.readouterr().err
    records = read_lines(out)
    ids = [r["id"] for r in records]
    assert sorted(ids) == sorted(s.id for s in load_samples(tiny_data.heldout)) and len(ids) == len(set(ids))
    assert records[:3] + records[3:-1] == [json.loads(line) for i, line in enumerate(lines) if i != 3]  # good lines kept
    assert records[-1] == original  # the garbled sample is predicted again (greedy: the same answer)
