"""A model directory is data: nothing in it makes a loading command import or run code.

Crafted directories ask for a plug-in face detector (`subprocess:Popen` with a shell command, or a
module that acts on import) or for `trust_remote_code` with an `auto_map` module in `llm/`. Each
writes a marker file if any of its code runs; the marker must never appear unless the user allowed
that code on the command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emoreason.config import ConfigError
from emoreason.encoders.config import EncoderConfig
from emoreason.encoders.tiny import build_tiny
from emoreason.features.media_config import FaceCropConfig, MediaConfig
from emoreason.media.faces import Box, FaceDetector, build_face_detector
from emoreason.media.video import FrameSampling
from emoreason.model.config import ModelConfig
from emoreason.model.loading import MODEL_FILE, build_model, read_model_config, save_model
from emoreason.model.projectors import ProjectorConfig
from emoreason.model.trust import UntrustedModelError, UserTrust
from emoreason.serving import chat, export, infer, serve_cli
from emoreason.serving.trust_options import trust_from_args

REPO = Path(__file__).resolve().parents[1]
CLIP = "h264_aac.mp4"  # from the media_dir fixture


class CountingDetector(FaceDetector):
    """A user's own plug-in: one box per frame, and a record of how it was built and used."""

    built_with: list[dict] = []
    frames_seen = 0

    def __init__(self, side: int = 20):
        CountingDetector.built_with.append({"side": side})
        self.side = side

    def detect(self, frame: np.ndarray) -> list[Box]:
        CountingDetector.frames_seen += 1
        return [Box(0, 0, self.side, self.side, 1.0)]


class MarkerOnInit:
    """Not a FaceDetector: if anything constructed it, the marker would exist."""

    def __init__(self, marker: str):
        Path(marker).write_text("constructed")

    def detect(self, frame):
        return []


@pytest.fixture(scope="module")
def trusted_dir(tiny_llm_dir, tmp_path_factory) -> Path:
    """A real, loadable model directory: the tiny LLM in llm/, a tiny ViT face encoder, a linear projector."""
    root = tmp_path_factory.mktemp("untrusted")
    model_dir = root / "model"
    shutil.copytree(tiny_llm_dir, model_dir / "llm")
    config = ModelConfig(
        llm=str(model_dir / "llm"),
        encoders={"face": EncoderConfig(build_tiny("vit", root / "encoders"))},
        projectors={"face": ProjectorConfig(kind="linear")},
        lora=None,
        media=MediaConfig(video=FrameSampling(num_frames=2), faces=FaceCropConfig(size=32)),
        max_length=128,
    )
    model, processor = build_model(config, seed=0)
    save_model(model, processor, model_dir)
    meta = json.loads((model_dir / MODEL_FILE).read_text())
    meta["config"]["llm"] = "llm"  # relative to the directory, as an export writes it
    (model_dir / MODEL_FILE).write_text(json.dumps(meta))
    return model_dir


def craft(trusted_dir: Path, tmp_path: Path, edit) -> Path:
    """A copy of the trusted directory whose emoreason_model.json config `edit` changed in place."""
    crafted = tmp_path / "crafted"
    shutil.copytree(trusted_dir, crafted)
    meta = json.loads((crafted / MODEL_FILE).read_text())
    edit(meta["config"])
    (crafted / MODEL_FILE).write_text(json.dumps(meta))
    return crafted


def popen_detector(marker: Path):
    def edit(config: dict) -> None:
        config["media"]["faces"]["detector"] = "subprocess:Popen"
        config["media"]["faces"]["detector_args"] = {"args": f"echo pwned > {marker}", "shell": True}

    return edit


def add_auto_map(model_dir: Path, marker: Path) -> None:
    """llm/config.json names a custom architecture whose module writes the marker when imported."""
    (model_dir / "llm" / "marker_code.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('imported')\n"
        "from transformers import Qwen2Config, Qwen2ForCausalLM\n\n\n"
        "class MarkerConfig(Qwen2Config):\n    model_type = 'emoreason_marker'\n\n\n"
        "class MarkerModel(Qwen2ForCausalLM):\n    config_class = MarkerConfig\n"
    )
    path = model_dir / "llm" / "config.json"
    config = json.loads(path.read_text())
    config["model_type"] = "emoreason_marker"
    config["auto_map"] = {"AutoConfig": "marker_code.MarkerConfig", "AutoModelForCausalLM": "marker_code.MarkerModel"}
    path.write_text(json.dumps(config))


@pytest.fixture
def samples(tmp_path) -> Path:
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps({"id": "s1", "media": {"video": CLIP}}) + "\n")
    return path


def run_infer(model_dir: Path, samples: Path, media_dir: Path, *extra: str) -> tuple[int, Path]:
    out = samples.parent / "predictions.jsonl"
    argv = ["--model", model_dir, "--input", samples, "--out", out, "--data-root", media_dir, "--labels", "happy,sad",
            "--max-tokens", "2", *extra]
    return infer.main([str(a) for a in argv]), out


def test_infer_refuses_a_popen_detector_named_by_the_model_dir(trusted_dir, tmp_path, samples, media_dir, capsys):
    marker = tmp_path / "popen_ran"
    crafted = craft(trusted_dir, tmp_path, popen_detector(marker))
    rc, out = run_infer(crafted, samples, media_dir)
    err = capsys.readouterr().err
    assert rc == 2
    assert not marker.exists()
    assert str(crafted / MODEL_FILE) in err and "'media.faces.detector'" in err and "'subprocess:Popen'" in err
    assert "--face-detector" in err
    assert not out.exists() or out.read_text() == ""


@pytest.mark.parametrize("command", ["serve", "chat", "export"])
def test_every_loading_command_refuses_it(command, trusted_dir, tmp_path, capsys):
    marker = tmp_path / "popen_ran"
    crafted = craft(trusted_dir, tmp_path, popen_detector(marker))
    argv = {
        "serve": ["--model", str(crafted), "--port", "0"],
        "chat": ["--model", str(crafted)],
        "export": [str(crafted), "--out", str(tmp_path / "export")],
    }[command]
    main = {"serve": serve_cli.main, "chat": chat.main, "export": export.main}[command]
    assert main(argv) == 2
    assert not marker.exists()
    assert "'media.faces.detector'" in capsys.readouterr().err


def test_a_plugin_module_named_by_the_model_dir_is_never_imported(trusted_dir, tmp_path, monkeypatch):
    marker = tmp_path / "module_imported"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "emoreason_evil_plugin.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('x')\n")
    monkeypatch.syspath_prepend(str(plugins))
    crafted = craft(trusted_dir, tmp_path, lambda c: c["media"]["faces"].update(detector="emoreason_evil_plugin:Face"))
    with pytest.raises(UntrustedModelError, match="emoreason_evil_plugin:Face"):
        read_model_config(crafted)
    assert not marker.exists() and "emoreason_evil_plugin" not in sys.modules


def test_the_users_own_detector_replaces_the_dirs_and_runs(trusted_dir, tmp_path, samples, media_dir):
    marker = tmp_path / "popen_ran"
    crafted = craft(trusted_dir, tmp_path, popen_detector(marker))
    CountingDetector.built_with.clear()
    CountingDetector.frames_seen = 0
    rc, out = run_infer(
        crafted, samples, media_dir, "--face-detector", f"{__name__}:CountingDetector", "--face-detector-args", '{"side": 24}'
    )
    assert rc == 0
    assert not marker.exists()
    # The directory's detector_args went with its detector; only the user's reached the constructor
    # (once per media-stage decode worker, each of which owns its detector).
    assert CountingDetector.built_with and all(args == {"side": 24} for args in CountingDetector.built_with)
    assert CountingDetector.frames_seen == 2  # media.video.num_frames
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["id"] == "s1" and "text" in record and "absent" not in record


def test_a_plugin_that_is_not_a_face_detector_is_refused_before_construction(tmp_path, trusted_dir, samples, media_dir, capsys):
    marker = tmp_path / "constructed"
    with pytest.raises(ValueError, match="is not a subclass of emoreason.media.faces.FaceDetector"):
        build_face_detector(f"{__name__}:MarkerOnInit", marker=str(marker))
    assert not marker.exists()
    # On the command line too, and before any sample runs.
    rc, out = run_infer(trusted_dir, samples, media_dir, "--face-detector", f"{__name__}:MarkerOnInit",
                        "--face-detector-args", json.dumps({"marker": str(marker)}))
    assert rc == 2 and not marker.exists()
    assert "is not a subclass" in capsys.readouterr().err
    assert not out.exists() or out.read_text() == ""


def test_detector_args_must_be_a_json_object():
    args = infer.build_parser().parse_args(["--model", "m", "--input", "i", "--out", "o", "--face-detector", "haar",
                                             "--face-detector-args", "[1]"])
    with pytest.raises(ConfigError, match="--face-detector-args: expected a JSON object"):
        trust_from_args(args)
    with pytest.raises(ConfigError, match="without a face detector"):
        UserTrust(face_detector_args={"side": 3})


def test_trust_remote_code_in_the_dir_is_refused_and_its_module_never_imported(trusted_dir, tmp_path, samples, media_dir, capsys):
    marker = tmp_path / "auto_map_imported"
    crafted = craft(trusted_dir, tmp_path, lambda c: c.update(trust_remote_code=True))
    add_auto_map(crafted, marker)
    rc, _ = run_infer(crafted, samples, media_dir)
    err = capsys.readouterr().err
    assert rc == 2 and not marker.exists()
    assert "'trust_remote_code'" in err and "--trust-remote-code" in err


def test_an_encoders_trust_remote_code_is_refused_too(trusted_dir, tmp_path):
    crafted = craft(trusted_dir, tmp_path, lambda c: c["encoders"]["face"].update(trust_remote_code=True))
    with pytest.raises(UntrustedModelError, match=r"'encoders\.face\.trust_remote_code'.*--trust-remote-code"):
        read_model_config(crafted)
    config, _ = read_model_config(crafted, UserTrust(trust_remote_code=True))
    assert config.encoders["face"].trust_remote_code and config.trust_remote_code


def test_an_auto_map_without_the_flag_in_the_dir_is_refused_by_transformers(trusted_dir, tmp_path, samples, media_dir, capsys):
    # The JSON leaves trust_remote_code off: transformers, told False explicitly, must not import the module.
    marker = tmp_path / "auto_map_imported"
    crafted = craft(trusted_dir, tmp_path, lambda c: None)
    add_auto_map(crafted, marker)
    rc, _ = run_infer(crafted, samples, media_dir)
    err = capsys.readouterr().err
    assert rc == 2 and not marker.exists()
    assert "auto_map" in err and "--trust-remote-code" in err


@pytest.mark.slow
def test_the_users_trust_remote_code_reaches_transformers(trusted_dir, tmp_path, samples, media_dir):
    marker = tmp_path / "auto_map_imported"
    crafted = craft(trusted_dir, tmp_path, lambda c: c.update(trust_remote_code=True))
    add_auto_map(crafted, marker)
    out = tmp_path / "predictions.jsonl"
    # A fresh process with its own module cache: transformers copies and imports the module there.
    env = os.environ | {"HF_HOME": str(tmp_path / "hf"), "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "emoreason.cli", "infer", "--model", str(crafted), "--input", str(samples), "--out", str(out),
            "--data-root", str(media_dir), "--labels", "happy,sad", "--max-tokens", "2", "--trust-remote-code"]
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert marker.read_text() == "imported"  # the checkpoint's own code ran, because the user allowed it
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["s1"]
