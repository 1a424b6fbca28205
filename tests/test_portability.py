"""Model directories and sample files that work from anywhere, and setup faults caught before the batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from serving_models import clips_dir, exported_model_dir

from emoreason.schema import load_samples

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emoreason(*args, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emoreason.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=os.environ | {"HF_HUB_OFFLINE": "1"}, **kwargs)


def test_saved_models_record_absolute_checkpoint_paths(tiny_data, tmp_path_factory):
    config = json.loads((exported_model_dir(tiny_data, tmp_path_factory) / "emoreason_model.json").read_text())["config"]
    assert config["llm"] == "llm"  # the export's own folder, resolved against the model directory
    assert all(Path(e["model"]).is_absolute() for e in config["encoders"].values())


@pytest.mark.slow
def test_export_serves_from_another_working_directory(tiny_data, tmp_path_factory, tmp_path):
    export = exported_model_dir(tiny_data, tmp_path_factory).resolve()
    clip = load_samples(tiny_data.heldout)[0].media.video
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "emoreason.cli", "serve", "--model", str(export), "--media-root", str(clips_dir(tiny_data).parent),
         "--port", str(port)],
        cwd=tmp_path, env=os.environ | {"HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model=client.models.list().data[0].id,
            messages=[{"role": "user", "content": [{"type": "text", "text": "Which emotion?"},
                                                   {"type": "video_url", "video_url": {"url": clip}}]}],
            max_tokens=4,
        )
        assert reply.choices[0].message.content is not None and reply.usage.prompt_tokens > 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_model_whose_encoder_cannot_load_fails_at_start_up(tiny_data, tmp_path_factory, tmp_path):
    """Not /health ok and then a 500 on every request: the engine refuses to start, naming the key."""
    import shutil

    from emoreason.config import ConfigError
    from emoreason.serving.backends import load_engine

    broken = tmp_path / "model"
    shutil.copytree(exported_model_dir(tiny_data, tmp_path_factory), broken)
    meta = json.loads((broken / "emoreason_model.json").read_text())
    meta["config"]["encoders"]["audio"]["model"] = "runs/demo/encoders/hubert"  # relative to a training folder
    (broken / "emoreason_model.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError) as info:
        load_engine("hf", broken)
    message = str(info.value)
    assert "key 'encoders.audio.model'" in message and "runs/demo/encoders/hubert" in message
    assert "working directory" in message


def test_prep_with_a_broken_encoder_stops_before_the_batch(tiny_data, tmp_path):
    data = tiny_data.train.parent.parent / "data" / "samples.jsonl"
    overrides = [f"encoders.{m}.model={p}" for m, p in tiny_data.encoders.items() if m != "audio"]
    overrides += ["encoders.audio.model=/nonexistent/hubert", f"output_dir={tmp_path / 'prep'}", "workers=1", "progress=false"]
    started = time.perf_counter()
    done = emoreason("prep", "--config", REPO / "configs/prep/demo.yaml", "--input", data, *overrides, cwd=REPO)
    assert done.returncode == 2, done.stderr
    assert "key 'encoders.audio.model'" in done.stderr and "/nonexistent/hubert" in done.stderr
    assert "unreadable" not in done.stderr + done.stdout
    assert not (tmp_path / "prep" / "samples.jsonl").exists() or not (tmp_path / "prep" / "samples.jsonl").read_text()
    assert time.perf_counter() - started < 120


def test_sample_files_written_elsewhere_keep_their_features_and_media(tiny_data, tmp_path, tmp_path_factory):
    """instruct --out into another folder, then infer on it from another working directory, with no --data-root."""
    from emoreason.data_prep.instruct_cli import main as instruct_main
    from emoreason.serving.infer import main as infer_main

    prepped = tiny_data.train.parent / "samples.jsonl"
    out = tmp_path / "deep" / "dir" / "recognition.jsonl"
    assert instruct_main(["--task", "recognition", "--input", str(prepped), "--out", str(out)]) == 0
    moved = load_samples(out)
    assert all(s.data_root and Path(s.data_root).is_absolute() for s in moved)
    for sample in moved[:3]:
        for ref in sample.features.values():
            assert (out.parent / ref.path).is_file()
    subset = out.parent / "subset.jsonl"
    subset.write_text("".join(line + "\n" for line in out.read_text().splitlines()[:3]))
    export = exported_model_dir(tiny_data, tmp_path_factory).resolve()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for source in ("cache", "live"):
            predictions = tmp_path / f"predictions-{source}.jsonl"
            assert infer_main(["--model", str(export), "--input", str(subset), "--out", str(predictions),
                               "--feature-source", source, "--max-tokens", "3"]) == 0
            records = [json.loads(line) for line in predictions.read_text().splitlines()]
            assert len(records) == 3 and not [r for r in records if "error" in r], records
    finally:
        os.chdir(cwd)
