"""Leaderboard submission files: write them, and validate them (before writing, and as files).

| benchmark      | file | content                                              |
|----------------|------|------------------------------------------------------|
| `mer2023`      | CSV  | `name,discrete,valence`                              |
| `mer2025-track1` | CSV | `name,discrete`                                     |
| `mer2025-track2` | NPZ | `filenames` (ids), `fileitems` (each id's labels as one string, "[happy, sad]") |
| `emer` / `mer2025-track3` | CSV | `name,reason`                           |

Validation checks that every expected id is there exactly once and no other id is, that discrete
labels are in the benchmark's label set, and the types (a finite valence, a non-empty reason, a
list of label strings the official reader reads back unchanged). An incomplete submission is
refused unless forced.

NPZ files hold string arrays only, as the official track-2 pipeline writes them, so they load with
and without `allow_pickle`; they are read with `allow_pickle=False`: an object array (which only
pickle can load, and unpickling can run code) is refused, never loaded.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from emoreason.atomic import atomic_path, write_text_atomic
from emoreason.eval.label_lists import format_label_list, label_problem, parse_label_list

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
        # An empty list is a valid answer ("no emotion identified"): the official scorer scores it 0.
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            return [f"{where}: expected a list of label strings, got {value!r}"]
        return [f"{where}: label {v!r} {problem}" for v in value if (problem := label_problem(v)) is not None]
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
    reasons: Mapping[str, str] | None = None,
) -> Path:
    """Validate, then write atomically. Missing ids are refused unless `force`; other problems always are.

    `reasons`: id -> why its prediction was left out ("the answer named no label"), said instead of "has no prediction".
    """
    spec = benchmark(benchmark_name)
    path = Path(path)
    problems, missing = validate_rows(spec, rows, expected_ids)
    if problems:
        raise SubmissionError(f"{benchmark_name} submission {path}", problems)
    if missing and not force:
        raise SubmissionError(
            f"{benchmark_name} submission {path} is incomplete (--force writes it without those ids)",
            [f"id {i!r}: {reasons[i]}" if i in (reasons or {}) else f"id {i!r} has no prediction" for i in missing],
        )
    if spec.file_type == "npz":
        write_npz(path, [row["name"] for row in rows], [format_label_list(row["openset"]) for row in rows])
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["name", *spec.fields])
        for row in rows:
            writer.writerow([row["name"], *(_csv_value(row[field]) for field in spec.fields)])
        write_text_atomic(path, buffer.getvalue())
    return path


def write_npz(path: str | Path, names: Sequence[str], items: Sequence[str]) -> Path:
    """`filenames` and `fileitems` as string arrays, written atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, filenames=np.array(list(names), dtype=np.str_), fileitems=np.array(list(items), dtype=np.str_))
    return path


def read_npz(path: str | Path) -> tuple[list[str], list[str]]:
    """(filenames, fileitems) of an official-layout NPZ, loaded without pickle; SubmissionError naming
    the file and the array otherwise."""
    path = Path(path)
    arrays: dict[str, list[str]] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise SubmissionError(str(path), ["expected an NPZ archive (np.savez), found a single .npy array"])
            if set(data.files) != {"filenames", "fileitems"}:
                raise SubmissionError(str(path), [f"expected arrays filenames and fileitems, found {sorted(data.files)}"])
            for key in ("filenames", "fileitems"):
                try:
                    array = data[key]
                except ValueError as exc:
                    if "allow_pickle" not in str(exc):
                        raise
                    raise SubmissionError(str(path), [
                        f"{key}: an object array, which only pickle can load, and unpickling can run code: refused. "
                        "Store strings, as the official pipeline does (np.array(['[happy, sad]', ...]))"
                    ]) from None
                if array.ndim != 1 or array.dtype.kind not in "US":
                    raise SubmissionError(str(path), [f"{key}: expected a 1-D array of strings, got dtype {array.dtype} shape {array.shape}"])
                arrays[key] = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.tolist()]
    except SubmissionError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SubmissionError(str(path), [f"not a readable NPZ file: {exc}"]) from None
    names, items = arrays["filenames"], arrays["fileitems"]
    if len(names) != len(items):
        raise SubmissionError(str(path), [f"{len(names)} filenames but {len(items)} fileitems"])
    return names, items


def _csv_value(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def read_submission(path: str | Path, benchmark_name: str) -> list[dict]:
    """Rows of a submission file; SubmissionError naming the file for a wrong header or layout."""
    spec = benchmark(benchmark_name)
    path = Path(path)
    if spec.file_type == "npz":
        names, items = read_npz(path)
        return [{"name": n, "openset": parse_label_list(i)} for n, i in zip(names, items)]
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
