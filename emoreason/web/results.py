"""Results written by `emoreason eval`, for the web app's results view: the leaderboard and each sample.

A results JSON names the predictions and references it scored (its `provenance`); the per-sample
rows re-read those two files through the evaluator's own `read_predictions`, `align` and
`predicted_label`, so a row is "wrong" or "unmatched" exactly when the metrics counted it so.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

UNMATCHED = "(no label)"
"""What the predicted-label filter calls an answer that named no label (or several, or failed)."""


class ResultsError(Exception):
    """A path that is not results written by `emoreason eval`; the message says what was expected."""


@dataclasses.dataclass
class Board:
    """One results JSON or a leaderboard folder of them."""

    results: list[dict]
    paths: list[Path]
    """The results JSON of each entry of `results`."""
    headers: list[str]
    rows: list[list]
    """One row per result; numbers stay numbers (so the table sorts numerically), a missing value is None."""


@dataclasses.dataclass
class SampleRow:
    id: str
    reference: str | None
    predicted: str | None
    """The label the answer names, None when it names none (or several), or the prediction failed."""
    outcome: str  # "correct" | "wrong" | "unmatched" | "error" | "no prediction"
    answer: str
    media: str | None
    """The sample's media path, relative to the data root (video, else audio, else image)."""
    media_kind: str | None


def open_board(path: str | Path) -> Board:
    """A `*.results.json` file or a folder of them (what `emoreason eval --out-dir` writes), validated."""
    from emoreason.eval.leaderboard import COLUMNS, RESULTS_SUFFIX, _sort_key

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob(f"*{RESULTS_SUFFIX}"))
        if not files:
            raise ResultsError(f"{path}: no *{RESULTS_SUFFIX} here; expected a folder written by `emoreason eval --out-dir`")
    elif path.is_file():
        files = [path]
    else:
        raise ResultsError(f"{path}: no such file or folder")
    loaded = sorted(((_read_result(f), f) for f in files), key=lambda pair: _sort_key(pair[0]))
    results = [r for r, _ in loaded]
    headers = [name for name, _, _ in COLUMNS]
    rows = [[_cell(_value_at(r, key)) for _, key, _ in COLUMNS] for r in results]
    return Board(results, [f for _, f in loaded], headers, rows)


def _read_result(path: Path) -> dict:
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); expected a results JSON from `emoreason eval`") from None
    if not isinstance(result, dict) or not isinstance(result.get("provenance"), dict) or "name" not in result:
        found = sorted(result)[:8] if isinstance(result, dict) else type(result).__name__
        raise ResultsError(f"{path}: not a results JSON from `emoreason eval` (expected 'name' and 'provenance'; found {found})")
    return result


def _value_at(result: dict, key: tuple):
    for part in key:
        if not isinstance(result, dict) or part not in result:
            return None
        result = result[part]
    return result


def _cell(value):
    if isinstance(value, float):
        return round(value, 4)  # the leaderboard's precision; still a number, so the column sorts numerically
    return value if value is None or isinstance(value, int | str) else str(value)


def plot_paths(result: dict, results_file: Path) -> dict[str, Path]:
    """name -> PNG that eval wrote (confusion, recall), found as recorded or beside the results file."""
    found = {}
    for name, recorded in (result.get("plots") or {}).items():
        path = _locate(recorded, results_file)
        if path is not None:
            found[name] = path
    return found


def _locate(recorded: str, results_file: Path) -> Path | None:
    """A path as eval recorded it (relative to where eval ran), else the same name beside the results file."""
    for candidate in (Path(recorded), results_file.parent / Path(recorded).name, results_file.parent / recorded):
        if candidate.is_file():
            return candidate
    return None


def sample_rows(result: dict, results_file: Path) -> tuple[list[SampleRow], list[str]]:
    """Every reference sample with its prediction, and the label set; ResultsError when the inputs are gone."""
    from emoreason.eval.predictions import PredictionError, align, predicted_label, read_predictions
    from emoreason.schema import SchemaError

    provenance = result["provenance"]
    files = {}
    for role in ("predictions", "references"):
        recorded = provenance.get(role)
        located = _locate(recorded, results_file) if isinstance(recorded, str) else None
        if located is None:
            raise ResultsError(f"the {role} file this result scored ({recorded}) is not found as recorded or beside {results_file}")
        files[role] = located
    labels = list((result.get("label_extraction") or {}).get("labels") or (result.get("classification") or {}).get("labels") or [])
    try:
        aligned = align(files["references"], read_predictions(files["predictions"]))
    except (PredictionError, SchemaError, ValueError, OSError) as exc:
        raise ResultsError(f"cannot read the scored files: {exc}") from None
    rows = []
    for sample, prediction in zip(aligned.samples, aligned.predictions):
        reference = sample.targets.emotion if sample.targets else None
        predicted = predicted_label(prediction, labels)
        kind = next((k for k in ("video", "audio", "image") if getattr(sample.media, k)), None)
        rows.append(SampleRow(
            id=sample.id,
            reference=reference,
            predicted=predicted,
            outcome=_outcome(prediction, reference, predicted),
            answer=_answer(prediction),
            media=getattr(sample.media, kind) if kind else None,
            media_kind=kind,
        ))
    return rows, labels


def _outcome(prediction, reference: str | None, predicted: str | None) -> str:
    if prediction is None:
        return "no prediction"
    if prediction.error is not None:
        return "error"
    if predicted is None:
        return "unmatched"
    return "correct" if predicted == reference else "wrong"


def _answer(prediction) -> str:
    if prediction is None:
        return ""
    if prediction.error is not None:
        return f"error: {prediction.error.get('message') or prediction.error.get('reason')}"
    return prediction.text if prediction.text is not None else (prediction.label or "")


def filter_rows(rows: list[SampleRow], reference: str | None = None, predicted: str | None = None,
                misclassified: bool = False, unmatched: bool = False) -> list[SampleRow]:
    """Rows with that true label and that predicted label (UNMATCHED: none), only misses, only unmatched answers."""
    out = []
    for row in rows:
        if reference and row.reference != reference:
            continue
        if predicted and (row.predicted is not None if predicted == UNMATCHED else row.predicted != predicted):
            continue
        if misclassified and row.outcome == "correct":
            continue
        if unmatched and row.predicted is not None:
            continue
        out.append(row)
    return out
