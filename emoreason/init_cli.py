"""`emoreason init --out DIR`: tiny random-weight encoders and LLM for trying the pipeline offline.

    emoreason init --out runs/tiny [--encoder audio=whisper] [--seed 0]

Builds, from their transformers configs (nothing is downloaded), the models the demo uses:
    DIR/encoders/<kind>/   one tiny encoder per modality (default: audio hubert, face vit,
                           video videomae, frame clip-vision)
    DIR/llm/               a tiny Qwen2-style LLM with its tokenizer and chat template
and prints the `key=value` lines that point configs/prep/demo.yaml and
configs/train/tiny_instruct.yaml at them. The weights are random: a trial of your own data through
prep, train, export and serve, not a model to report results with. Paths are absolute, so the
lines work from any folder. Re-running reuses what is already built.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emoreason.cli_args import HelpFormatter
from emoreason.constants import MODALITIES

PREP_CONFIG = "configs/prep/demo.yaml"
TRAIN_CONFIG = "configs/train/tiny_instruct.yaml"
# modality -> the encoder families that can feed it (the FrozenEncoder method each modality calls).
MODALITY_FAMILIES: dict[str, tuple[str, ...]] = {
    "audio": ("waveform", "whisper"),
    "face": ("image",),
    "video": ("video",),
    "frame": ("image",),
}


class InitError(ValueError):
    """An --encoder choice that cannot work; the message names it."""


def parse_encoder_choices(items: list[str]) -> dict[str, str]:
    choices: dict[str, str] = {}
    for item in items:
        modality, sep, kind = item.partition("=")
        if not sep or modality not in MODALITIES or not kind:
            raise InitError(f"--encoder {item}: expected MODALITY=KIND with MODALITY one of {list(MODALITIES)}")
        choices[modality] = kind
    return choices


def check_family(modality: str, encoder_dir: str) -> None:
    from emoreason.encoders.families import FAMILIES

    model_type = json.loads((Path(encoder_dir) / "config.json").read_text())["model_type"]
    family = FAMILIES.get(model_type)
    if family not in MODALITY_FAMILIES[modality]:
        fits = sorted(t for t, f in FAMILIES.items() if f in MODALITY_FAMILIES[modality])
        raise InitError(f"--encoder {modality}={Path(encoder_dir).name}: a {model_type} model cannot encode {modality}; "
                        f"model types that can: {fits}")


def build_workspace(out_dir: str | Path, choices: dict[str, str] | None = None, seed: int = 0) -> tuple[str, dict[str, str]]:
    """Build the tiny LLM and one tiny encoder per modality under out_dir; (llm dir, modality -> encoder dir)."""
    from emoreason.encoders.tiny import TINY_KINDS, build_tiny, build_tiny_encoders
    from emoreason.model.tiny_llm import build_tiny_llm

    out_dir = Path(out_dir).resolve()
    for modality, kind in (choices or {}).items():
        if kind not in TINY_KINDS:
            raise InitError(f"--encoder {modality}={kind}: unknown tiny encoder; expected one of {list(TINY_KINDS)}")
    encoders = build_tiny_encoders(out_dir / "encoders", seed=seed)
    for modality, kind in (choices or {}).items():
        encoders[modality] = build_tiny(kind, out_dir / "encoders", seed=seed)
        check_family(modality, encoders[modality])
    return build_tiny_llm(out_dir / "llm", seed=seed), encoders


def config_lines(llm: str, encoders: dict[str, str]) -> dict[str, list[str]]:
    """The overrides that point the tiny prep and train configs at these models."""
    return {
        "prep": [f"encoders.{m}.model={p}" for m, p in encoders.items()],
        # Training on prep's output takes the encoders from prep's featurizer.json: only the LLM is new.
        "train": [f"model.llm={llm}"],
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason init", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--out", required=True, help="folder for encoders/ and llm/")
    parser.add_argument(
        "--encoder", action="append", default=[], metavar="MODALITY=KIND",
        help="a tiny encoder other than the default for a modality, e.g. audio=whisper (repeatable); kinds: "
        "audio hubert, wav2vec2, whisper; face and frame vit, vitmae, clip, clip-vision, dinov2, siglip, "
        "siglip-vision; video videomae",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        choices = parse_encoder_choices(args.encoder)
        llm, encoders = build_workspace(args.out, choices, args.seed)
    except InitError as exc:
        print(f"emoreason init: {exc}", file=sys.stderr)
        return 2
    lines = config_lines(llm, encoders)
    print(f"tiny encoders and LLM (random weights, for offline trials) in {Path(args.out).resolve()}")
    print("\n# prep your samples with the tiny encoders:")
    print(f"emoreason prep --config {PREP_CONFIG} --input YOUR_SAMPLES.jsonl output_dir=runs/mine/prep \\\n  "
          + " \\\n  ".join(lines["prep"]))
    # Beside prep's samples.jsonl: feature references are relative to the file's folder.
    print("\n# build conversations, then train the tiny recipe on them:")
    print("emoreason instruct --task recognition --input runs/mine/prep/samples.jsonl --out runs/mine/prep/train.jsonl")
    print(f"emoreason train --config {TRAIN_CONFIG} data.train=runs/mine/prep/train.jsonl optim.output_dir=runs/mine/train \\\n  "
          + " \\\n  ".join(lines["train"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
