"""`emoreason prep --config configs/prep/X.yaml [key=value ...]`: samples in, samples with features out."""

from __future__ import annotations

import argparse
import sys

from emoreason.config import ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoreason prep",
        description="Decode clips, crop faces, run frozen encoders and cache features. "
        "Re-running resumes: finished samples are skipped.",
    )
    parser.add_argument("--config", help="YAML prep config (see configs/prep/)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. workers=2 video.num_frames=16")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any sample failed")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
