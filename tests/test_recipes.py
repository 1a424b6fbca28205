"""Every YAML under configs/recipes/ loads and validates: each starts with the command that runs it, and a native
recipe's `# tiny twin KIND: KEY=VALUE ...` line turns it into a run on that tiny twin, checked against the twin's
config and processor (components, modalities, frame limit) as `emoreason train` checks it before any weights load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from native_twins import twin_dir

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "configs" / "recipes").glob("*.yaml"))
TINY_LINE = re.compile(r"^# tiny twin (\w+): (.+)$", re.MULTILINE)


def test_there_are_recipes():
    names = {p.name for p in RECIPES}
    assert {"facial_r1_sft.yaml", "videmo_sft.yaml", "facellm.yaml", "omni_emotion.yaml", "expllm_native.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_starts_with_its_command_and_parses(path):
    text = path.read_text()
    head = "\n".join(text.splitlines()[:2])
    assert text.startswith("# ") and f"--config configs/recipes/{path.name}" in head, f"{path.name}: the first lines must show the command that runs it"
    assert isinstance(yaml.safe_load(text), dict)


NATIVE = [p for p in RECIPES if (yaml.safe_load(p.read_text()).get("model") or {}).get("kind") == "native"]


@pytest.mark.parametrize("path", NATIVE, ids=[p.name for p in NATIVE])
def test_native_recipe_validates_on_its_tiny_twin(path, tmp_path_factory, tmp_path, monkeypatch):
    from emoreason.train.kinds import load_any_train_config
    from emoreason.train.native_config import NativeTrainConfig

    text = path.read_text()
    assert "paper setting" in text and "-> our key" in text and "Source:" in text, f"{path.name}: no paper-setting table with its source"
    found = TINY_LINE.search(text)
    assert found, f"{path.name}: no '# tiny twin KIND: overrides' line"
    kind, overrides = found.group(1), found.group(2).split()
    monkeypatch.chdir(ROOT)  # recipes name configs/deepspeed/*.json relative to the repository
    fill = [f"model.base={twin_dir(tmp_path_factory, kind)}", f"data.train={tmp_path / 'train.jsonl'}", f"optim.output_dir={tmp_path / 'out'}"]
    cfg = load_any_train_config(str(path), fill + overrides)
    assert isinstance(cfg, NativeTrainConfig)
    full = load_any_train_config(str(path), fill + overrides + ["stage=align"])
    assert list(full.model.components) == ["connector"]
    # The recipe as written (its real backbone, not downloaded here) is valid data on its own.
    from emoreason.train.native_config import load_native_train_config

    plain = load_native_train_config(str(path), [f"data.train={tmp_path / 'train.jsonl'}", f"optim.output_dir={tmp_path / 'out'}"],
                                     check_checkpoints=False)
    assert plain.model.base == yaml.safe_load(text)["model"]["base"]
