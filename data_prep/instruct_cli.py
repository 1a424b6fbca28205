"""`emoreason instruct --task TASK --input INPUT --out OUT`: add instruction conversations to schema JSONL.

    emoreason instruct --task recognition --input runs/prep/mer/samples.jsonl --out runs/prep/mer/rec.jsonl \\
        --labels neutral,angry,happy,sad,worried,surprise --modalities video,audio --seed 0

Samples lacking what the task needs are listed and skipped; the rest are written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emoreason.cli_args import HelpFormatter, add_flag_with_positional_alias, resolve_positional_alias
from emoreason.data_prep.instructions import LABELLED_TASKS, TASKS, InstructionError, build_conversations, load_templates
from emoreason.schema import emotion_labels, load_samples, write_samples


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoreason instruct",
        description="Build instruction conversations for labelled samples (see docs/instructions.md).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--task", required=True, choices=TASKS, help="which conversation to build")
    add_flag_with_positional_alias(
        parser, "--input", "schema JSONL with targets: prep's samples.jsonl, so the features come along", "FILE"
    )
    parser.add_argument("--out", required=True, help="schema JSONL to write (replaced atomically)")
    parser.add_argument(
        "--labels", type=_names, help="recognition: comma-separated candidate labels (default: the emotions in INPUT, sorted)"
    )
    parser.add_argument(
        "--modalities",
        type=_names,
        default=["video", "audio"],
        help="comma-separated modalities whose placeholders open the prompt, among audio,face,video,frame "
        "(default: video,audio; an empty string gives text-only prompts)",
    )
    parser.add_argument("--seed", type=int, default=0, help="template choice seed (default: 0)")
    parser.add_argument("--templates", help="template YAML to use instead of the packaged templates.yaml")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    resolve_positional_alias(parser, args, "--input")
    try:
        samples = load_samples(args.input)
        templates = load_templates(args.templates)
        labels = args.labels
        if args.task in LABELLED_TASKS and not labels:
            labels = emotion_labels(samples)
            print(f"labels (from {args.input}): {', '.join(labels)}")
        errors: list[InstructionError] = []
        built = build_conversations(
            samples, args.task, modalities=args.modalities, seed=args.seed, labels=labels, templates=templates, errors=errors
        )
    except (OSError, ValueError) as exc:  # SchemaError (bad input) and ConfigError (bad templates) are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for exc in errors:
        print(f"skipped: {exc}", file=sys.stderr)
    if not built:
        print(f"error: none of the {len(samples)} samples in {args.input} has what task {args.task!r} needs", file=sys.stderr)
        return 1
    write_samples(args.out, built, refs_from=Path(args.input).parent)
    skipped = f", skipped {len(errors)}" if errors else ""
    print(f"built {len(built)} {args.task} conversations from {args.input} to {args.out}{skipped}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
