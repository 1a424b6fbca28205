"""`emoreason prep --config configs/prep/X.yaml --input FILE [key=value ...]`: samples in, samples with features out."""

from __future__ import annotations

import argparse
import sys

from emoreason.cli_args import HelpFormatter
from emoreason.config import ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoreason prep",
        description="Decode clips, crop faces, run frozen encoders and cache features. "
        "Re-running resumes: finished samples are skipped.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--config", help="YAML prep config (see configs/prep/)")
    parser.add_argument("--input", metavar="FILE", help="schema JSONL, CSV manifest or list of media paths (the config's input=)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. output_dir=runs/prep/mer workers=2")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any sample failed")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.input is not None:
        if any(o.split("=", 1)[0].strip() == "input" for o in args.overrides):
            parser.error("the input is given twice, as --input and as input=; give only --input")
        args.overrides = [f"input={args.input}", *args.overrides]
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.data_prep.runner import REPORT_FILE, run_prep

    try:
        cfg = load_config(PrepConfig, args.config, args.overrides)
        report = run_prep(cfg)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"emoreason prep: error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"report: {report.output_dir}/{REPORT_FILE}")
    return 1 if args.strict and report.counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
