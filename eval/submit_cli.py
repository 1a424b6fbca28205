"""`emoreason submit`: turn predictions into a validated leaderboard file.

    emoreason submit --benchmark mer2025-track1 --predictions runs/mer/predictions.jsonl \
        --ids data/test_ids.txt --out runs/mer/track1.csv

Benchmarks: mer2023 (CSV name,discrete,valence), mer2025-track1 (CSV name,discrete),
mer2025-track2 (NPZ filenames, fileitems), emer / mer2025-track3 (CSV name,reason).
`--ids` (one id per line) or `--references` (schema JSONL) gives the benchmark's id list. An answer
that names no label of the benchmark, lacks a valence, or failed counts as missing, never coerced:
the file is refused while any id is missing, unless --force (which leaves those ids out), or
`--fallback-label LABEL` (discrete benchmarks: every id without a usable label gets LABEL, so the
file has exactly the benchmark's ids; the ids it was applied to are listed in the sidecar
FILE.meta.json). Track 2 files are named X-openset.npz, as the official scorer and Codalab expect;
beside it X.npz holds the descriptions the labels came from (string arrays too).
`--check FILE` validates an existing file instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emoreason.atomic import write_text_atomic
from emoreason.cli_args import HelpFormatter
from emoreason.eval.predictions import PredictionError, Prediction, predicted_label, predicted_open_vocab, read_predictions
from emoreason.eval.submission import BENCHMARKS, Benchmark, SubmissionError, benchmark, validate_submission, write_npz, write_submission
from emoreason.labels import extract_valence
from emoreason.schema import SchemaError, load_samples

# field -> what an answer that cannot fill it lacked
UNUSABLE = {"discrete": "named no label", "valence": "stated no valence", "openset": "named no emotion", "reason": "gave no reason"}


def field_value(spec: Benchmark, prediction: Prediction, field: str):
    """The value of one file field from a prediction, or None when the answer does not give it."""
    if field == "discrete":
        return predicted_label(prediction, spec.labels)
    if field == "valence":  # a "valence" field, else the number a recognition-valence answer states
        return prediction.valence if prediction.valence is not None else extract_valence(prediction.text or "")
    if field == "openset":
        return predicted_open_vocab(prediction) or None
    return (prediction.text or "").strip() or None  # reason


def submission_row(spec: Benchmark, prediction: Prediction) -> dict | None:
    """The file row for one prediction, or None when it cannot fill every field."""
    if prediction.error is not None:
        return None
    row: dict = {"name": prediction.id}
    for field in spec.fields:
        if (value := field_value(spec, prediction, field)) is None:
            return None
        row[field] = value
    return row


def unusable_reason(spec: Benchmark, prediction: Prediction) -> str:
    """Why submission_row made no row for a prediction, as the refusal message says it."""
    if prediction.error is not None:
        reason = prediction.error.get("reason", "error") if isinstance(prediction.error, dict) else "error"
        return f"the prediction failed ({reason})"
    missing = [f for f in spec.fields if field_value(spec, prediction, f) is None]
    return "the answer " + " and ".join(UNUSABLE[f] + (f" of {spec.name}" if f == "discrete" else "") for f in missing)


def expected_ids(args: argparse.Namespace) -> list[str] | None:
    if args.ids:
        return [line.strip() for line in Path(args.ids).read_text().splitlines() if line.strip()]
    if args.references:
        return [s.id for s in load_samples(args.references)]
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason submit", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS), help="the leaderboard whose file to write or check")
    parser.add_argument("--predictions", help="predictions JSONL (`emoreason infer` output)")
    parser.add_argument("--out", help="submission file to write")
    parser.add_argument("--check", help="validate this existing submission file instead of writing one")
    ids = parser.add_mutually_exclusive_group()
    ids.add_argument("--ids", help="the benchmark's ids, one per line")
    ids.add_argument("--references", help="schema JSONL whose sample ids are the benchmark's ids")
    parser.add_argument("--force", action="store_true", help="write even though some ids have no usable prediction")
    parser.add_argument("--fallback-label", help="discrete benchmarks: give every id without a usable label this label (recorded in FILE.meta.json)")
    return parser


OPENSET_SUFFIX = "-openset.npz"


def with_fallback(spec: Benchmark, rows: list[dict], ids: list[str] | None, predictions: dict, fallback: str) -> tuple[list[dict], list[str]]:
    """Rows completed with `fallback` for every expected id lacking a usable discrete label."""
    if "discrete" not in spec.fields or spec.fields != ("discrete",):
        raise ValueError(f"--fallback-label applies to benchmarks whose only field is a discrete label, not {spec.name} ({list(spec.fields)})")
    if fallback not in spec.labels:
        raise ValueError(f"--fallback-label {fallback!r} is not a {spec.name} label; expected one of {list(spec.labels)}")
    have = {row["name"] for row in rows}
    wanted = ids if ids is not None else list(predictions)
    filled = [i for i in wanted if i not in have]
    return rows + [{"name": i, "discrete": fallback} for i in filled], filled


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
    filled: list[str] = []
    if args.fallback_label:
        rows, filled = with_fallback(spec, rows, ids, predictions, args.fallback_label)
        unusable = []
    if spec.file_type == "npz" and not str(args.out).endswith(OPENSET_SUFFIX):
        raise ValueError(f"--out {args.out}: a {spec.name} file must be named X{OPENSET_SUFFIX} (the official scorer and Codalab read only that name)")
    reasons = {i: unusable_reason(spec, predictions[i]) for i in unusable}
    path = write_submission(args.out, spec.name, rows, ids, force=args.force, reasons=reasons)
    if spec.file_type == "npz":
        # The official evaluation.py globs X.npz and scores its X-openset.npz: write the descriptions beside it.
        order = [row["name"] for row in rows]
        write_npz(str(path)[: -len(OPENSET_SUFFIX)] + ".npz", order, [(predictions[i].text or "") if i in predictions else "" for i in order])
    meta = {"benchmark": spec.name, "rows": len(rows), "fallback_label": args.fallback_label, "fallback_ids": filled,
            "forced": bool(args.force), "left_out": unusable}
    write_text_atomic(Path(f"{path}.meta.json"), json.dumps(meta, indent=2) + "\n")
    note = f"; left out {len(unusable)} unusable predictions (no label / no value / error): {unusable[:5]}" if unusable else ""
    if filled:
        note += f"; {len(filled)} ids got the fallback label {args.fallback_label!r} (listed in {path}.meta.json)"
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
