"""`emoreason submit`: turn predictions into a validated leaderboard file.

    emoreason submit --benchmark mer2025-track1 --predictions runs/mer/predictions.jsonl \
        --ids data/test_ids.txt --out runs/mer/track1.csv

Benchmarks: mer2023 (CSV name,discrete,valence), mer2025-track1 (CSV name,discrete),
mer2025-track2 (NPZ filenames, fileitems), emer / mer2025-track3 (CSV name,reason).
`--ids` (one id per line) or `--references` (schema JSONL) gives the benchmark's id list. An answer
that names no label of the benchmark, lacks a valence, or failed counts as missing, never coerced:
the file is refused while any id is missing, unless --force (which leaves those ids out).
`--check FILE` validates an existing file instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emoreason.eval.predictions import PredictionError, Prediction, predicted_label, predicted_open_vocab, read_predictions
from emoreason.eval.submission import BENCHMARKS, Benchmark, SubmissionError, benchmark, validate_submission, write_submission
from emoreason.schema import SchemaError, load_samples


def submission_row(spec: Benchmark, prediction: Prediction) -> dict | None:
    """The file row for one prediction, or None when it cannot fill every field."""
    if prediction.error is not None:
        return None
    row: dict = {"name": prediction.id}
    for field in spec.fields:
        if field == "discrete":
            value = predicted_label(prediction, spec.labels)
        elif field == "valence":
            value = prediction.valence
        elif field == "openset":
            value = predicted_open_vocab(prediction) or None
        else:  # reason
            value = (prediction.text or "").strip() or None
        if value is None:
            return None
        row[field] = value
    return row


def expected_ids(args: argparse.Namespace) -> list[str] | None:
    if args.ids:
        return [line.strip() for line in Path(args.ids).read_text().splitlines() if line.strip()]
    if args.references:
        return [s.id for s in load_samples(args.references)]
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason submit", description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    parser.add_argument("--predictions", help="predictions JSONL (`emoreason infer` output)")
    parser.add_argument("--out", help="submission file to write")
    parser.add_argument("--check", help="validate this existing submission file instead of writing one")
    ids = parser.add_mutually_exclusive_group()
    ids.add_argument("--ids", help="the benchmark's ids, one per line")
    ids.add_argument("--references", help="schema JSONL whose sample ids are the benchmark's ids")
    parser.add_argument("--force", action="store_true", help="write even though some ids have no usable prediction")
    return parser


def run(args: argparse.Namespace) -> str:
    spec = benchmark(args.benchmark)
    ids = expected_ids(args)
    if args.check:
        validate_submission(args.check, spec.name, ids)
        return f"{args.check}: valid {spec.name} submission" + (f" ({len(ids)} ids)" if ids else "")
    if not (args.predictions and args.out):
        raise ValueError("--predictions and --out are required (or --check FILE)")
    predictions = read_predictions(args.predictions)
    wanted = None if ids is None else set(ids)
    rows: list[dict] = []
    unusable: list[str] = []
    for prediction in predictions.values():
        if wanted is not None and prediction.id not in wanted:
            continue  # predictions for other splits are not this file's business
        row = submission_row(spec, prediction)
        if row is None:
            unusable.append(prediction.id)
        else:
            rows.append(row)
    path = write_submission(args.out, spec.name, rows, ids, force=args.force)
    note = f"; left out {len(unusable)} unusable predictions (no label / no value / error): {unusable[:5]}" if unusable else ""
    return f"wrote {path}: {len(rows)} rows{note}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(run(args))
    except (SubmissionError, PredictionError, SchemaError, FileNotFoundError, ValueError) as exc:
        print(f"emoreason submit: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
