"""The dataset registry: validated on load (errors name the file, the entry and the key), and `registry:NAME`
taken wherever a data path is (train's data.train / data.eval, eval's --references)."""

from __future__ import annotations

import json

import pytest

from emoreason.config import ConfigError
from emoreason.dataset_registry import REGISTRY_ENV, DatasetRegistryError, load_registry, lookup


def write_registry(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{format: samples}", "entry 'bad': key 'path' is required"),
        ("{path: x.jsonl, format: parquet}", "entry 'bad': key 'format': expected one of ['samples', 'csv', 'paths'], got 'parquet'"),
        ("{path: x.jsonl, split: dev}", "entry 'bad': key 'split': expected one of ['train', 'validation', 'test'], got 'dev'"),
        ("{path: x.jsonl, root: /data}", "entry 'bad': unknown key 'root'"),
        ("{path: 3}", "entry 'bad': key 'path': expected a string, got 3"),
        ("x.jsonl", "entry 'bad': expected a mapping"),
    ],
)
def test_a_bad_entry_is_named_with_its_file_and_key(tmp_path, entry, message):
    registry = write_registry(tmp_path / "datasets.yaml", f"good: {{path: a.jsonl}}\nbad: {entry}\n")
    with pytest.raises(DatasetRegistryError) as info:
        load_registry(registry)
    assert str(info.value).startswith(f"{registry}: {message}")


def test_paths_are_relative_to_the_registry_and_unknown_names_list_the_known(tmp_path, monkeypatch):
    (tmp_path / "reg").mkdir()
    registry = write_registry(tmp_path / "reg" / "datasets.yaml", "mer: {path: ../data/mer.jsonl, split: test, data_root: ../clips}\n")
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    entry = lookup("registry:mer")
    assert entry.path == tmp_path / "reg" / ".." / "data" / "mer.jsonl" and entry.data_root == tmp_path / "reg" / ".." / "clips"
    with pytest.raises(DatasetRegistryError, match=r"no dataset named 'nope' \(known: \['mer'\]\)"):
        lookup("registry:nope")
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(DatasetRegistryError, match="missing.yaml: dataset registry not found"):
        lookup("registry:mer")


def test_train_config_takes_registry_names(tiny_data, tmp_path, monkeypatch):
    from emoreason.demo import TRAIN_CONFIG
    from emoreason.train.config import load_train_config

    registry = write_registry(tmp_path / "datasets.yaml", f"""
tiny-train: {{path: {tiny_data.train}, split: train, data_root: {tmp_path / 'media'}}}
tiny-heldout: {{path: {tiny_data.heldout}, split: validation}}
tiny-test: {{path: {tiny_data.heldout}, split: test}}
tiny-csv: {{path: {tiny_data.heldout}, format: csv}}
""")
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    base = [f"model.llm={tiny_data.llm}", "optim.output_dir=out"]
    cfg = load_train_config(TRAIN_CONFIG, base + ["data.train=registry:tiny-train", "data.eval=registry:tiny-heldout"], check_checkpoints=False)
    assert (cfg.data.train, cfg.data.eval, cfg.data.data_root) == (str(tiny_data.train), str(tiny_data.heldout), str(tmp_path / "media"))
    assert cfg.model.encoders, "the encoders come from prep's featurizer.json beside the registry entry's file"

    with pytest.raises(ConfigError, match="entry 'tiny-test' of .* is the test split; train on a train split"):
        load_train_config(TRAIN_CONFIG, base + ["data.train=registry:tiny-test"], check_checkpoints=False)
    with pytest.raises(ConfigError, match="entry 'tiny-csv' of .*: data.train takes format samples, the entry's format is 'csv'"):
        load_train_config(TRAIN_CONFIG, base + ["data.train=registry:tiny-csv"], check_checkpoints=False)


def test_eval_takes_a_registry_name_for_its_references(tmp_path, monkeypatch, capsys):
    from emoreason.eval.eval_cli import main as eval_main
    from emoreason.schema import Sample, write_samples
    from test_eval_cli import REFERENCES

    write_samples(tmp_path / "refs.jsonl", [Sample.model_validate(r) for r in REFERENCES])
    preds = tmp_path / "run.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "text": r["targets"]["emotion"]}) + "\n" for r in REFERENCES))
    monkeypatch.setenv(REGISTRY_ENV, str(write_registry(tmp_path / "datasets.yaml", "refs: {path: refs.jsonl, split: test}\n")))
    args = ["--predictions", str(preds), "--out-dir", str(tmp_path / "board"), "--no-plots"]
    assert eval_main(args + ["--references", "registry:refs"]) == 0
    results = json.loads((tmp_path / "board" / "run.results.json").read_text())
    assert results["classification"]["accuracy"] == 1.0
    assert eval_main(args + ["--references", "registry:other"]) == 2
    assert "no dataset named 'other' (known: ['refs'])" in capsys.readouterr().err


def test_infer_takes_a_registry_name_for_its_input(tmp_path, monkeypatch, capsys):
    from emoreason.serving.infer import main as infer_main

    (tmp_path / "clips.jsonl").write_text(json.dumps({"id": "c1", "media": {"video": "c1.mp4"}}) + "\n")
    monkeypatch.setenv(REGISTRY_ENV, str(write_registry(tmp_path / "datasets.yaml", "clips: {path: clips.jsonl, split: test}\n")))
    args = ["--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "preds.jsonl")]
    assert infer_main(args + ["--input", "registry:nope"]) == 2
    assert "no dataset named 'nope' (known: ['clips'])" in capsys.readouterr().err
    # Resolved and read: its one sample has no conversation, so infer asks for the labels to prompt with.
    assert infer_main(args + ["--input", "registry:clips"]) == 2
    assert "pass --labels a,b,c" in capsys.readouterr().err
