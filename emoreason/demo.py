"""`emoreason demo`: the whole pipeline on the embedded default, offline, on a CPU.

Today: generate the synthetic emotion clips, build tiny random-weight encoders from their
transformers configs, run prep on the clips and print the report. Later stages (training, serving,
evaluation) extend this same command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/demo", help="where the demo writes everything (default runs/demo)")
    parser.add_argument("--config", default="configs/prep/demo.yaml", help="prep config (default configs/prep/demo.yaml)")
    parser.add_argument("--num-per-class", type=int, default=8, help="synthetic clips per emotion class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="key=value overrides for the prep config, e.g. workers=1")
    return parser


def prepare_demo_data(workdir: Path, num_per_class: int, seed: int) -> Path:
    """Synthetic clips under workdir/data; reused when already generated with the same settings."""
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    data_dir = workdir / "data"
    stamp = data_dir / "synthetic.json"
    settings = {"num_per_class": num_per_class, "seed": seed}
    if not (stamp.exists() and json.loads(stamp.read_text()) == settings and (data_dir / "samples.jsonl").exists()):
        generate_dataset(data_dir, SyntheticConfig(num_per_class=num_per_class, seed=seed))
        stamp.write_text(json.dumps(settings))
    return data_dir / "samples.jsonl"


def run_demo_prep(workdir: Path, config: str, samples: Path, overrides: list[str]):
    from emoreason.config import load_config
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.data_prep.runner import run_prep
    from emoreason.encoders.tiny import build_tiny_encoders

    encoder_dirs = build_tiny_encoders(workdir / "encoders")
    fill = [f"input={samples}", f"output_dir={workdir / 'prep'}"]
    fill += [f"encoders.{modality}.model={path}" for modality, path in encoder_dirs.items()]
    cfg = load_config(PrepConfig, config, fill + overrides)
    return run_prep(cfg)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    workdir = Path(args.workdir)
    print(f"[demo 1/2] synthetic data set -> {workdir / 'data'}")
    samples = prepare_demo_data(workdir, args.num_per_class, args.seed)
    print(f"[demo 2/2] prep (decode, faces, tiny encoders, feature cache) -> {workdir / 'prep'}")
    report = run_demo_prep(workdir, args.config, samples, args.overrides)
    print(report.summary())
    print(f"report: {workdir / 'prep' / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
