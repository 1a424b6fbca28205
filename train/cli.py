"""`emoreason train --config configs/train/X.yaml [key=value ...]`: align projectors or LoRA-tune the emotion LM.

Launch on many GPUs with scripts/train_torchrun.sh (DeepSpeed via optim.deepspeed=...).
Re-running the same command resumes an unfinished run from its newest complete checkpoint in
optim.output_dir; a finished run there is refused (exit 2) unless --overwrite.

The arguments are parsed and the config is validated before the training stack (transformers,
peft, DeepSpeed) is imported, so `--help` and a config error answer in a fraction of a second.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from emoreason.cli_args import HelpFormatter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoreason train", description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--config", required=True, help="YAML train config (see configs/train/)")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="train anew in an optim.output_dir that holds a run, removing its checkpoints, model and train_config.yaml "
        "(the same as optim.overwrite=true)",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.learning_rate=1e-4 stage=align"
    )
    return parser


def exit_status(start: Callable[[], Path], refusals: tuple[type[Exception], ...]) -> int:
    """The exit status of one run, `start()` returning its final model: 0, printing the model's path; 2 on one of
    the run's `refusals` (bad input, a run folder it must not continue), printing its message; 1 when training
    stopped on a non-finite loss. Each kind and stage's run_config passes its own refusals."""
    from emoreason.train.trainer import NonFiniteLossError

    try:
        final = start()
    except refusals as exc:
        print(f"emoreason train: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLossError as exc:
        print(f"emoreason train: error: {exc}", file=sys.stderr)
        return 1
    print(f"model: {final}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from emoreason.config import ConfigError
    from emoreason.hf_quiet import quiet_deepspeed_cpu_notice
    from emoreason.train.kinds import load_any_train_config, run_any_config

    try:
        cfg = load_any_train_config(args.config, args.overrides + (["optim.overwrite=true"] if args.overwrite else []))
    except (ConfigError, FileNotFoundError) as exc:
        print(f"emoreason train: error: {exc}", file=sys.stderr)
        return 2
    quiet_deepspeed_cpu_notice()
    return run_any_config(cfg)


if __name__ == "__main__":
    sys.exit(main())
