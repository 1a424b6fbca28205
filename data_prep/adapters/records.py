"""Read annotation files as located records, and turn records into validated samples.

Every record carries a `Location` (file plus CSV/TXT line or JSON key), so an error anywhere in an
adapter names where it came from:

    labels.csv:7: field 'valence': expected a number, got 'high'
    MERR_fine_grained.json: entry 'sample_00000047': field 'pseu_emotion': expected a string, got 3
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from emoreason.schema import Sample, SchemaError, parse_sample, sample_or_error, unique_samples

T = TypeVar("T")


class AnnotationError(SchemaError):
    """A bad row (located by line) or JSON entry (located by key) of an annotation file."""

    def __init__(self, file: str | os.PathLike, line: int | None, field: str, message: str, key: str | None = None):
        super().__init__(file, line, field, message)
        self.key = key
        if key is not None:
            self.args = (f"{file}: entry {key!r}: field '{field}': {message}",)


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a record sits: a line of a CSV/TXT file, or a key (or list index) of a JSON file."""

    file: str
    line: int | None = None
    key: str | None = None

    def error(self, field: str, message: str) -> AnnotationError:
        return AnnotationError(self.file, self.line, field, message, self.key)

    def describe(self) -> str:
        return f"entry {self.key!r}" if self.key is not None else f"line {self.line}"


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    return path


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> AnnotationError:
    return AnnotationError(path, None, "<file>", f"expected UTF-8 text ({exc.reason}); re-save the file as UTF-8")


def read_csv_rows(
    path: str | os.PathLike, required: Sequence[str | Sequence[str]]
) -> Iterator[tuple[Location, dict[str, str] | AnnotationError]]:
    """Rows of a CSV with a header, values stripped; a row with the wrong column count comes as an error.

    `required` lists columns the header must have; an entry that is itself a list means "one of these"
    (published files spell the same column differently, e.g. `name` / `names`). A missing column
    raises at once: the whole file is wrong, not one row. A row's line is where it ends (a quoted
    cell may span lines).
    """
    path = _existing(path)
    # utf-8-sig: the MER CSVs are often saved from Excel with a byte-order mark before `name`.
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            reader = csv.DictReader(f)
            header = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = header
            for column in required:
                options = [column] if isinstance(column, str) else list(column)
                if not set(options) & set(header):
                    wanted = repr(options[0]) if len(options) == 1 else " or ".join(map(repr, options))
                    raise AnnotationError(path, 1, options[0], f"missing column: expected {wanted} in the header, got {header}")
            for row in reader:
                loc = Location(str(path), reader.line_num)
                if None in row or None in row.values():
                    got = len(header) - list(row.values()).count(None) + len(row.get(None) or [])
                    yield loc, loc.error("<row>", f"expected {len(header)} columns ({', '.join(header)}), got {got}")
                    continue
                yield loc, {k: v.strip() for k, v in row.items()}
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, exc) from None


def read_text_lines(path: str | os.PathLike) -> Iterator[tuple[Location, str]]:
    """Non-blank lines of a text file, stripped, with their 1-based line numbers."""
    path = _existing(path)
    with open(path, encoding="utf-8-sig") as f:
        try:
            for lineno, line in enumerate(f, start=1):
                if line.strip():
                    yield Location(str(path), lineno), line.strip()
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, exc) from None


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys silently, which would drop a sample unnoticed.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def read_json(path: str | os.PathLike) -> Any:
    path = _existing(path)
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, exc.lineno, "<json>", f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:
        raise AnnotationError(path, None, "<json>", f"invalid JSON: {exc}") from None


def json_entries(
    path: str | os.PathLike, data: Any, name_fields: Sequence[str]
) -> Iterator[tuple[Location, tuple[str, Any] | AnnotationError]]:
    """(location, (sample name, entry)) for a JSON object keyed by name, or a list of objects with a name field.

    An entry that is not an object, or a listed one without a name, comes as an error in its place.
    """
    if isinstance(data, dict):
        for key, entry in data.items():
            loc = Location(str(path), key=key)
            if not isinstance(entry, dict):
                yield loc, loc.error("<entry>", f"expected an object, got {type(entry).__name__}")
                continue
            yield loc, (key, entry)
    elif isinstance(data, list):
        for index, entry in enumerate(data):
            name = next((entry[f] for f in name_fields if isinstance(entry, dict) and f in entry), None)
            if not isinstance(name, str) or not name.strip():
                loc = Location(str(path), key=f"[{index}]")
                yield loc, loc.error(name_fields[0], f"expected a non-empty string naming the sample, got {name!r}")
                continue
            yield Location(str(path), key=name.strip()), (name.strip(), entry)
    else:
        raise AnnotationError(path, None, "<json>", f"expected an object keyed by sample name or a list of objects, got {type(data).__name__}")


def checked_dir(video_dir: str, option: str = "video_dir") -> str:
    """`video_dir` if it is relative to the data root without '..' (checked once, not on every row)."""
    directory = PurePosixPath(video_dir.replace("\\", "/"))
    if directory.is_absolute() or ".." in directory.parts:
        raise ValueError(f"{option} must be relative to the data root without '..', got {video_dir!r}")
    return str(directory)


def compact(value: Any) -> Any:
    """Drop None values and empty dicts, so absent annotations stay absent in the sample."""
    if isinstance(value, dict):
        kept = {k: compact(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {}}
    return value


def build_sample(record: dict[str, Any], loc: Location) -> Sample:
    """Validate a record against the schema, re-raising schema errors at the record's location."""
    try:
        return parse_sample(compact(record), loc.file, loc.line)
    except SchemaError as exc:
        raise loc.error(exc.field, exc.message) from None


DEFAULT_VIDEO_DIR = "video"
DEFAULT_EXT = "mp4"


class VideoClips:
    """The clips of a per-clip video annotation file: sample `name` has its video at `<video_dir>/<name>.<ext>`.

    Made before the file is read, so a bad `video_dir` is refused before any row.
    """

    def __init__(self, video_dir: str, ext: str):
        self.video_dir = checked_dir(video_dir)
        self.ext = ext

    def sample(self, name: str, loc: Location, *, ext: str | None = None, **fields: Any) -> Sample:
        """The validated sample `name` with its video and the given schema fields; `ext` overrides the file's
        default extension (a clip name that carries its own)."""
        video = str(PurePosixPath(self.video_dir) / f"{name}.{(ext or self.ext).lstrip('.')}")
        return build_sample({"id": name, "media": {"video": video}, **fields}, loc)


class VideoAdapter(Protocol):
    def __call__(
        self, path: str | os.PathLike, *, video_dir: str = DEFAULT_VIDEO_DIR, ext: str = DEFAULT_EXT,
        errors: list[SchemaError] | None = None,
    ) -> list[Sample]: ...


def video_adapter(read: Callable[[str | os.PathLike, VideoClips, list[SchemaError] | None], list[Sample]]) -> VideoAdapter:
    """The public `read_<format>(path, *, video_dir="video", ext="mp4", errors=None)` around `read(path, clips, errors)`.

    Every per-clip video format takes these options with these defaults and checks `video_dir` before it
    reads the file: here, once. The adapter keeps `read`'s name and docstring; its signature is the one above.
    """

    def adapter(
        path: str | os.PathLike, *, video_dir: str = DEFAULT_VIDEO_DIR, ext: str = DEFAULT_EXT,
        errors: list[SchemaError] | None = None,
    ) -> list[Sample]:
        return read(path, VideoClips(video_dir, ext), errors)

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(adapter, attribute, getattr(read, attribute))
    return adapter


def collect_samples(
    records: Iterable[tuple[Location, T | SchemaError]],
    to_sample: Callable[[T, Location], Sample],
    errors: list[SchemaError] | None,
) -> list[Sample]:
    """Convert located records; a bad record or a repeated id raises, or with `errors` is recorded and skipped.

    Readers yield an error in place of a record they could not read, so it is skipped the same way.
    The rule is `emoreason.schema.unique_samples`, the one `iter_samples` applies to a JSONL file.
    """
    located = ((loc, record if isinstance(record, SchemaError) else sample_or_error(to_sample, record, loc))
               for loc, record in records)

    def duplicate(sample_id: str, loc: Location, first: Location) -> SchemaError:
        return loc.error("id", f"expected a unique id, {sample_id!r} already at {first.describe()}")

    return list(unique_samples(located, duplicate, errors))
