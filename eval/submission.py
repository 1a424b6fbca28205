"""Leaderboard submission files: write them, and validate them (before writing, and as files).

| benchmark      | file | content                                              |
|----------------|------|------------------------------------------------------|
| `mer2023`      | CSV  | `name,discrete,valence`                              |
| `mer2025-track1` | CSV | `name,discrete`                                     |
| `mer2025-track2` | NPZ | `filenames` (ids), `fileitems` (open-vocabulary label lists) |
| `emer` / `mer2025-track3` | CSV | `name,reason`                           |

Validation checks that every expected id is there exactly once and no other id is, that discrete
labels are in the benchmark's label set, and the types (a finite valence, a non-empty reason, a
list of non-empty label strings). An incomplete submission is refused unless forced.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from emoreason.atomic import atomic_path, write_text_atomic

# MER2023/2024/2025's six discrete classes, spelled as the challenge files spell them.
MER_LABELS = ("neutral", "angry", "happy", "sad", "worried", "surprise")


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    fields: tuple[str, ...]
    """Per-sample fields besides the id, in file order."""
    file_type: str  # "csv" | "npz"
    labels: tuple[str, ...] = ()


BENCHMARKS: dict[str, Benchmark] = {
    "mer2023": Benchmark("mer2023", ("discrete", "valence"), "csv", MER_LABELS),
    "mer2025-track1": Benchmark("mer2025-track1", ("discrete",), "csv", MER_LABELS),
    "mer2025-track2": Benchmark("mer2025-track2", ("openset",), "npz"),
    "emer": Benchmark("emer", ("reason",), "csv"),
    "mer2025-track3": Benchmark("mer2025-track3", ("reason",), "csv"),
}


class SubmissionError(ValueError):
    """A submission that does not pass validation; `problems` lists every one found."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        super().__init__(f"{where}: {len(problems)} problem(s):\n  {shown}")


def benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]


def _field_problems(spec: Benchmark, sample_id: str, field: str, value) -> list[str]:
    where = f"id {sample_id!r}: {field}"
    if field == "discrete":
        if not isinstance(value, str) or value not in spec.labels:
            return [f"{where}: expected one of {list(spec.labels)}, got {value!r}"]
    elif field == "valence":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return [f"{where}: expected a finite number, got {value!r}"]
    elif field == "reason":
        if not isinstance(value, str) or not value.strip():
            return [f"{where}: expected a non-empty string, got {value!r}"]
    elif field == "openset":
        if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            return [f"{where}: expected a non-empty list of non-empty label strings, got {value!r}"]
    return []


def validate_rows(spec: Benchmark, rows: Sequence[Mapping], expected_ids: Iterable[str] | None) -> tuple[list[str], list[str]]:
    """(problems, missing ids). A row is {"name": id, field: value, ...}."""
    problems: list[str] = []
    counts = Counter(str(row.get("name")) for row in rows)
    problems += [f"id {i!r} appears {n} times" for i, n in counts.items() if n > 1]
    for index, row in enumerate(rows):
        if not isinstance(row.get("name"), str) or not row["name"]:
            problems.append(f"row {index}: name: expected a non-empty id string, got {row.get('name')!r}")
            continue
        for field in spec.fields:
            if field not in row:
                problems.append(f"id {row['name']!r}: {field}: missing")
            else:
                problems += _field_problems(spec, row["name"], field, row[field])
    missing: list[str] = []
    if expected_ids is not None:
        expected = list(dict.fromkeys(expected_ids))
        missing = [i for i in expected if i not in counts]
        unexpected = sorted(set(counts) - set(expected))
        problems += [f"id {i!r} is not in the benchmark's id list" for i in unexpected]
    return problems, missing


def write_submission(
    path: str | Path,
    benchmark_name: str,
    rows: Sequence[Mapping],
    expected_ids: Iterable[str] | None = None,
    force: bool = False,
) -> Path:
    """Validate, then write atomically. Missing ids are refused unless `force`; other problems always are."""
    spec = benchmark(benchmark_name)
    path = Path(path)
    problems, missing = validate_rows(spec, rows, expected_ids)
    if problems:
        raise SubmissionError(f"{benchmark_name} submission {path}", problems)
    if missing and not force:
        raise SubmissionError(
            f"{benchmark_name} submission {path} is incomplete (pass force to write it anyway)",
            [f"id {i!r} has no prediction" for i in missing],
        )
    if spec.file_type == "npz":
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            names = np.array([row["name"] for row in rows])
            items = np.empty(len(rows), dtype=object)
            items[:] = [list(row["openset"]) for row in rows]
            np.savez(f, filenames=names, fileitems=items)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["name", *spec.fields])
        for row in rows:
            writer.writerow([row["name"], *(_csv_value(row[field]) for field in spec.fields)])
        write_text_atomic(path, buffer.getvalue())
    return path


def _csv_value(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def read_submission(path: str | Path, benchmark_name: str) -> list[dict]:
    """Rows of a submission file; SubmissionError naming the file for a wrong header or layout."""
    spec = benchmark(benchmark_name)
    path = Path(path)
    if spec.file_type == "npz":
        try:
            with np.load(path, allow_pickle=True) as data:  # fileitems is an object array of lists
                if set(data.files) != {"filenames", "fileitems"}:
                    raise SubmissionError(str(path), [f"expected arrays filenames and fileitems, found {sorted(data.files)}"])
                names, items = data["filenames"].tolist(), data["fileitems"].tolist()
        except (OSError, ValueError) as exc:
            if isinstance(exc, SubmissionError):
                raise
            raise SubmissionError(str(path), [f"not a readable NPZ file: {exc}"]) from None
        if len(names) != len(items):
            raise SubmissionError(str(path), [f"{len(names)} filenames but {len(items)} fileitems"])
        return [{"name": n, "openset": i} for n, i in zip(names, items)]
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["name", *spec.fields]:
            raise SubmissionError(str(path), [f"header: expected {['name', *spec.fields]}, got {header}"])
        rows = []
        for line, values in enumerate(reader, start=2):
            if len(values) != len(header):
                raise SubmissionError(str(path), [f"line {line}: expected {len(header)} columns, got {len(values)}"])
            row = dict(zip(header, values))
            if "valence" in row:
                try:
                    row["valence"] = float(row["valence"])
                except ValueError:
                    pass  # left as text: validation reports it with its id
            rows.append(row)
        return rows


def validate_submission(path: str | Path, benchmark_name: str, expected_ids: Iterable[str] | None = None) -> None:
    """Raise SubmissionError listing every problem of a written file (missing ids included)."""
    spec = benchmark(benchmark_name)
    problems, missing = validate_rows(spec, read_submission(path, benchmark_name), expected_ids)
    problems += [f"id {i!r} has no prediction" for i in missing]
    if problems:
        raise SubmissionError(f"{benchmark_name} submission {path}", problems)
