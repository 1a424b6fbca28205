"""The `emoreason` command line: light imports per subcommand, one help style, consistent flags, init."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from emoreason.cli import SUBCOMMANDS
from emoreason.cli_args import HelpFormatter

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "deepspeed", "sklearn", "accelerate", "datasets", "vllm", "matplotlib")


def test_help_of_every_subcommand_imports_no_heavy_library():
    # One cold interpreter walks every subcommand's --help; a heavy import at module level in any of
    # them shows up in sys.modules (what `emoreason <cmd> --help` waited seconds for).
    script = (
        "import json, sys\n"
        "from emoreason.cli import SUBCOMMANDS, main\n"
        "heavy = {}\n"
        "for name in ['--help', *SUBCOMMANDS]:\n"
        "    try:\n"
        "        main([name, '--help'] if name != '--help' else ['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    heavy[name] = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert heavy == {name: [] for name in ["--help", *SUBCOMMANDS]}


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def subcommand_parser(name: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser a subcommand's main() builds, caught at parse_args."""

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", capture)
        with pytest.raises(_Captured) as caught:
            importlib.import_module(SUBCOMMANDS[name][0]).main([])
    return caught.value.parser


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_option_with_a_default_shows_it_in_help(name, monkeypatch):
    parser = subcommand_parser(name, monkeypatch)
    assert parser.formatter_class is HelpFormatter
    formatter = parser._get_formatter()
    for action in parser._actions:
        default = action.default
        if action.help is argparse.SUPPRESS or action.required or default is None or default is False or default in ([], "", argparse.SUPPRESS):
            continue
        shown = formatter._get_help_string(action)
        assert "default" in shown.lower(), f"{name} {action.option_strings or action.dest}: {shown!r}"
    assert not [a for a in parser._actions if not a.help], f"{name}: options without help"


def test_train_help_example_override_and_errors_blame_the_command_line(tmp_path, capsys):
    from emoreason.train.cli import main as train_main
    from emoreason.train.config import load_train_config

    samples = tmp_path / "x.jsonl"
    samples.write_text("")  # data.train must name an existing file; nothing here reads it
    fill = ["model.llm=x", f"data.train={samples}", "optim.output_dir=out"] + [f"model.encoders.{m}.model=x" for m in ("audio", "face", "video", "frame")]
    example = ["optim.learning_rate=1e-4", "stage=align"]  # what `emoreason train --help` shows
    cfg = load_train_config(str(ROOT / "configs/train/tiny_instruct.yaml"), fill + example, check_checkpoints=False)
    assert cfg.optim.learning_rate == 1e-4 and cfg.stage == "align"

    assert train_main(["--config", str(ROOT / "configs/train/tiny_instruct.yaml"), *fill, "optim.learning_rate=fast"]) == 2
    err = capsys.readouterr().err
    assert "command line override optim.learning_rate=fast: key 'optim.learning_rate': expected a number" in err
    assert "tiny_instruct.yaml" not in err


@pytest.mark.slow
def test_deepspeed_cpu_notice_is_silenced():
    pytest.importorskip("deepspeed")
    code = "import emoreason.hf_quiet as q\n{}\nimport deepspeed\n"
    loud = subprocess.run([sys.executable, "-c", code.format("")], capture_output=True, text=True, timeout=300)
    if "Setting accelerator to CPU" not in loud.stdout + loud.stderr:  # DeepSpeed logs to stdout
        pytest.skip("this machine has an accelerator DeepSpeed detects")
    quiet = subprocess.run([sys.executable, "-c", code.format("q.quiet_deepspeed_cpu_notice()")], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "Setting accelerator to CPU" not in quiet.stdout + quiet.stderr


def test_export_takes_model_and_keeps_the_positional_as_a_deprecated_alias(tmp_path, capsys):
    from emoreason.serving.export import main as export_main

    missing = tmp_path / "no-model"
    assert export_main(["--model", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert "deprecated" not in capsys.readouterr().err
    assert export_main([str(missing), "--out", str(tmp_path / "out")]) == 2
    assert f"deprecated and will stop working in the next release; write --model {missing}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main(["--out", str(tmp_path / "out")])
    assert "required: --model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export_main(["--model", "a", "b", "--out", str(tmp_path / "out")])
    assert "two values for --model" in capsys.readouterr().err


def test_input_is_one_flag_everywhere(tmp_path, capsys):
    from emoreason.data_prep import instruct_cli, prep_cli

    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"id": "a", "media": {"video": "a.mp4"}, "targets": {"emotion": "happy"}}) + "\n")
    args = ["--task", "recognition", "--out", str(tmp_path / "r.jsonl"), "--modalities", "video"]
    assert instruct_cli.main([*args, "--input", str(samples)]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert instruct_cli.main([*args, str(samples)]) == 0
    assert "write --input" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        prep_cli.main(["--input", str(samples), f"input={samples}"])
    assert "given twice" in capsys.readouterr().err


def test_chat_url_uses_the_api_key_serve_reads(monkeypatch):
    from emoreason.serving.chat import build_parser

    monkeypatch.setenv("EMOREASON_API_KEY", "s3cret")
    assert build_parser().parse_args(["--url", "http://127.0.0.1:1"]).api_key == "s3cret"
    assert build_parser().parse_args(["--url", "http://127.0.0.1:1", "--api-key", "other"]).api_key == "other"


def test_served_model_id_names_the_run_not_the_export_folder(tmp_path):
    from emoreason.serving.engine import default_model_name

    assert default_model_name(tmp_path / "runs" / "mer-r8" / "export") == "mer-r8"
    assert default_model_name(tmp_path / "runs" / "mer-r8" / "model") == "mer-r8"
    assert default_model_name(tmp_path / "served" / "mer-r8-merged-v2") == "mer-r8-merged-v2"


def test_init_builds_tiny_models_whose_config_lines_load(tmp_path, capsys):
    from emoreason.config import load_config
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.init_cli import main as init_main
    from emoreason.train.config import load_train_config

    assert init_main(["--out", str(tmp_path / "tiny"), "--encoder", "audio=wav2vec2"]) == 0
    out = capsys.readouterr().out
    prep_line = next(line for line in out.splitlines() if line.startswith("emoreason prep"))
    assert "--input" in prep_line
    overrides = [tok for tok in out.replace("\\\n", " ").split() if "=" in tok and tok.split("=")[0].count(".") >= 1]
    prep = [o for o in overrides if o.startswith("encoders.")]
    train = [o for o in overrides if o.startswith("model.")]
    assert {o.split("=")[0] for o in prep} == {f"encoders.{m}.model" for m in ("audio", "face", "video", "frame")}
    assert prep[0].endswith("/encoders/wav2vec2") and Path(prep[0].split("=", 1)[1]).is_absolute()
    cfg = load_config(PrepConfig, ROOT / "configs/prep/demo.yaml", ["input=x.jsonl", "output_dir=o", *prep])
    assert Path(cfg.encoders["audio"].model, "config.json").exists()
    # Prep writes its featurizer contract beside samples.jsonl; training there takes the encoders from it.
    from emoreason.features.contract import FeaturizerSettings, write_contract

    write_contract(tmp_path / "prep", FeaturizerSettings(cfg.encoders, cfg.media))
    (tmp_path / "prep" / "train.jsonl").write_text("")
    # check_checkpoints: every path exists and the LoRA targets are modules of the tiny LLM.
    train_cfg = load_train_config(
        str(ROOT / "configs/train/tiny_instruct.yaml"), [*train, f"data.train={tmp_path / 'prep/train.jsonl'}", "optim.output_dir=o"]
    )
    assert train_cfg.model.encoders["audio"].model == cfg.encoders["audio"].model

    assert init_main(["--out", str(tmp_path / "tiny"), "--encoder", "video=vit"]) == 2
    assert "--encoder video=vit: a vit model cannot encode video" in capsys.readouterr().err
    assert init_main(["--out", str(tmp_path / "tiny"), "--encoder", "smell=vit"]) == 2


def readme_commands() -> list[list[str]]:
    """The README's command list, one argv per `emoreason ...` line (optional `[...]` parts dropped)."""
    import re
    import shlex

    text = (ROOT / "README.md").read_text()
    block = text.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [re.sub(r"\[[^\]]*\]", "", line.split("  #")[0]).strip() for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("emoreason ") and "..." not in line]


def test_readme_command_list_parses_in_pipeline_order(monkeypatch, capsys):
    commands = readme_commands()
    order = [argv[0] for argv in commands]
    assert order.index("prep") < order.index("instruct") < order.index("train") < order.index("export")
    for argv in commands:
        parser = subcommand_parser(argv[0], monkeypatch)
        parser.parse_args(argv[1:])  # SystemExit on a flag the command does not take
        assert "deprecated" not in capsys.readouterr().err, argv


def test_docs_and_configs_name_only_paths_the_tools_write():
    texts = {p: p.read_text() for p in [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("configs/*/*.yaml")]}
    for path, text in texts.items():
        assert "../shared" not in text, f"{path} links outside the repository"
        # training writes <output_dir>/model; the demo writes its samples under prep/ and names encoders by kind
        for wrong in ("runs/mer/final", "runs/demo/train.jsonl", "encoders/audio"):
            assert wrong not in text, f"{path} names {wrong}, which nothing writes"
