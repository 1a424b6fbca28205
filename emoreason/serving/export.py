"""`emoreason export --model MODEL_DIR --out DIR`: a trained model -> a serving directory with the LoRA merged.

The model directory's kind (emoreason.model_kinds) chooses the export. A native backbone's
(emoreason.native.model.export_model_dir) is a plain transformers checkpoint with every LoRA merged
plus `emoreason_native.json`. A projector model's:

    DIR/
      emoreason_model.json     same config, but llm: "llm" (relative to DIR) and lora: null
      projectors.safetensors   projector (and pre-fusion) weights, unchanged
      tokenizer/               the tokenizer with its chat template
      llm/                     a standard transformers checkpoint: merged weights (safetensors),
                               config, generation_config, tokenizer + chat template
      encoders/<modality>/     each LoRA-tuned encoder merged (checkpoint + its processor), named
                               by encoders.<modality>.model: "encoders/<modality>", train: frozen

`llm/` loads on its own with AutoModelForCausalLM / AutoTokenizer or vLLM, so a serving backend
needs no peft. Encoder references and prompt settings are copied as they are.

The model stack (torch, transformers, peft) is imported only once there is a model to export, so
`--help` and a usage error answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from emoreason.atomic import replace_dir
from emoreason.cli_args import HelpFormatter, add_flag_with_positional_alias, resolve_positional_alias
from emoreason.hf_quiet import quiet_deepspeed_cpu_notice, quiet_hf_progress
from emoreason.model.trust import UserTrust
from emoreason.serving.trust_options import add_trust_arguments, trust_from_args

LLM_DIR = "llm"


def _check_target(model_dir: Path, out_dir: Path) -> None:
    """Refuse to clobber anything but an earlier export (or an empty folder)."""
    from emoreason.model_kinds import kind_of_dir

    if out_dir.resolve() == model_dir.resolve():
        raise ValueError(f"--out {out_dir} is the model directory itself; export into a new folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        try:
            kind_of_dir(out_dir)
        except FileNotFoundError:
            raise FileExistsError(f"{out_dir} exists and is not an emoreason model directory; choose another --out") from None


def export_model(model_dir: str | os.PathLike, out_dir: str | os.PathLike, trust: UserTrust | None = None) -> Path:
    """Merge every LoRA of `model_dir` and write the serving directory `out_dir`, as its kind exports."""
    from emoreason.model_kinds import kind_of_dir

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    _check_target(model_dir, out_dir)
    return kind_of_dir(model_dir).export_function()(model_dir, out_dir, trust)


def export_projector_model(model_dir: str | os.PathLike, out_dir: str | os.PathLike, trust: UserTrust | None = None) -> Path:
    """Merge the LoRA of `model_dir` into its LLM and write the serving directory `out_dir`.

    The whole directory is staged beside `out_dir` and renamed into place, so a reader (or a
    kill) never sees half an export; an earlier export at `out_dir` is replaced. The export records
    the config as loaded under `trust`, so it asks for the same permissions when it is served.
    """
    from emoreason.model.loading import load_model, save_model

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    model, processor = load_model(model_dir, trust=trust)
    from emoreason.encoders.config import EncoderTraining
    from emoreason.model.loading import EXPORTED_ENCODERS_DIR

    llm = model.llm.merge_and_unload() if model.model_config.lora is not None else model.llm
    # Each tuned encoder merged: served as a plain frozen checkpoint, so every backend's Featurizer loads it.
    tuned = {m: (enc.merged(), enc.encoder.processor) for m, enc in model.encoders.items()}
    encoders = {m: dataclasses.replace(e, model=f"{EXPORTED_ENCODERS_DIR}/{m}", train=EncoderTraining()) if m in tuned else e
                for m, e in model.model_config.encoders.items()}
    # The EmotionLM is ours alone here: rewire it to the merged LLM so save_model writes the new config.
    model.llm = llm
    model.encoders.clear()
    model.model_config = dataclasses.replace(model.model_config, llm=LLM_DIR, lora=None, encoders=encoders)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with replace_dir(out_dir) as staging:
        with quiet_hf_progress():
            llm.save_pretrained(str(staging / LLM_DIR))
            for m, (encoder, encoder_processor) in tuned.items():
                encoder.save_pretrained(str(staging / EXPORTED_ENCODERS_DIR / m))
                encoder_processor.save_pretrained(str(staging / EXPORTED_ENCODERS_DIR / m))
        processor.tokenizer.save_pretrained(str(staging / LLM_DIR))
        save_model(model, processor, staging)
    return out_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason export", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    # `emoreason export MODEL_DIR`, the old spelling, still works for one release, with a warning.
    add_flag_with_positional_alias(parser, "--model", "a trained model directory (emoreason_model.json + adapter/ + projectors)", "MODEL_DIR")
    parser.add_argument("--out", required=True, help="the serving directory to write (replaces an earlier export there)")
    add_trust_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    model_dir = resolve_positional_alias(parser, args, "--model")
    quiet_deepspeed_cpu_notice()
    try:
        out = export_model(model_dir, args.out, trust_from_args(args))
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"emoreason export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {model_dir} -> {out} (LoRA merged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
