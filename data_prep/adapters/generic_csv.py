"""Any CSV with a header, given a mapping from schema fields to its column names.

    {"id": "clip", "media.video": "path", "targets.emotion": "label", "targets.valence": "v", "subtitle": "text"}

Mappable fields: id, media.video / media.audio / media.image, subtitle, targets.emotion,
targets.open_vocab, targets.valence, targets.arousal, targets.reasoning, targets.clues.<source>
(audio, face, video, frame, text) and source.<key> (free-form provenance). Numbers are parsed as
floats, open_vocab as a list (JSON, Python list literal or comma-separated); an empty cell leaves
the field out. Labels (emotion, open_vocab) are lowercased as the other adapters do, the emotion as
written kept in source.label. Media columns hold paths relative to the data root.

Options: `id_from_path` takes ids from a column's file names (`clips/c02.mp4` -> `c02`) instead of
an id column; `media_prefix` puts a folder in front of every media path; `split` keeps only the rows
whose `source.split` column holds that value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from emoreason.data_prep.adapters.records import Location, build_sample, checked_dir, collect_samples, read_csv_rows
from emoreason.data_prep.adapters.values import parse_float, parse_labels
from emoreason.schema import ClueSource, Sample, SchemaError

DATASET = "generic-csv"
_TEXT_FIELDS = {"id", "media.video", "media.audio", "media.image", "subtitle", "targets.emotion", "targets.reasoning"}
_FLOAT_FIELDS = {"targets.valence", "targets.arousal"}
_LIST_FIELDS = {"targets.open_vocab"}
_MEDIA_FIELDS = {"media.video", "media.audio", "media.image"}
_CLUE_FIELDS = {f"targets.clues.{source}" for source in ClueSource.__args__}
MAPPABLE_FIELDS: tuple[str, ...] = (*sorted(_TEXT_FIELDS | _FLOAT_FIELDS | _LIST_FIELDS | _CLUE_FIELDS), "source.<key>")


def check_mapping(mapping: Any, id_required: bool = True) -> dict[str, str]:
    """The mapping if it maps known schema fields to column names and includes `id`; else ValueError."""
    if not isinstance(mapping, Mapping):
        raise ValueError(f"mapping: expected an object of schema field -> column name, got {type(mapping).__name__}")
    for field, column in mapping.items():
        known = field in MAPPABLE_FIELDS or (field.startswith("source.") and len(field) > len("source."))
        if not known:
            raise ValueError(f"mapping: unknown schema field {field!r}; expected one of {list(MAPPABLE_FIELDS)}")
        if not isinstance(column, str) or not column:
            raise ValueError(f"mapping: field {field!r}: expected a column name, got {column!r}")
    if id_required and "id" not in mapping:
        raise ValueError("mapping: expected an 'id' entry naming the column with sample ids (or use id_from_path)")
    return dict(mapping)


def _typed(field: str, text: str, loc: Location) -> Any:
    if field in _FLOAT_FIELDS:
        return parse_float(text, field, loc)
    if field in _LIST_FIELDS:
        return [label.lower() for label in parse_labels(text, field, loc)]
    if field == "targets.emotion":
        return text.lower()
    return text


def id_from_file_name(text: str) -> str:
    """`clips/c02.mp4` -> `c02`: the file name without folder or extension."""
    return PurePosixPath(text.replace("\\", "/")).stem


def _nest(record: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".", 2) if dotted.startswith("targets.clues.") else dotted.split(".", 1)
    for part in parents:
        record = record.setdefault(part, {})
    record[leaf] = value


def read_generic_csv(
    path: str | os.PathLike,
    *,
    mapping: Mapping[str, str],
    errors: list[SchemaError] | None = None,
    id_from_path: str | None = None,
    media_prefix: str | None = None,
    split: str | None = None,
) -> list[Sample]:
    """Samples from the mapped columns, typed per the schema; `source.dataset` defaults to 'generic-csv'.

    id_from_path: a column of file names to take ids from (instead of mapping `id`); media_prefix: a
    folder, relative to the data root, put before every media path; split: keep only the rows whose
    `source.split` column holds this value.
    """
    mapping = check_mapping(mapping, id_required=id_from_path is None)
    if id_from_path is not None and "id" in mapping:
        raise ValueError(f"id_from_path={id_from_path!r} and mapping 'id' both give the ids: keep one")
    if split is not None and "source.split" not in mapping:
        raise ValueError(f"split={split!r}: map the split column as 'source.split' to filter on it")
    prefix = checked_dir(media_prefix, "media_prefix") if media_prefix else None
    columns = list(dict.fromkeys([*mapping.values(), *([id_from_path] if id_from_path else [])]))

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        record: dict[str, Any] = {"source": {"dataset": DATASET}}
        for field, column in mapping.items():
            if row[column]:
                _nest(record, field, _typed(field, row[column], loc))
                if field == "targets.emotion":
                    record["source"]["label"] = row[column]
                elif field in _MEDIA_FIELDS and prefix is not None:
                    _nest(record, field, str(PurePosixPath(prefix) / row[column]))
        if id_from_path is not None and row[id_from_path]:
            record["id"] = id_from_file_name(row[id_from_path])
        if "id" not in record:
            column = id_from_path or mapping["id"]
            raise loc.error("id", f"expected a non-empty id in column {column!r}, got an empty cell")
        return build_sample(record, loc)

    rows = read_csv_rows(path, columns)
    if split is not None:
        split_column = mapping["source.split"]
        rows = ((loc, row) for loc, row in rows if not isinstance(row, dict) or row[split_column] == split)
    return collect_samples(rows, to_sample, errors)
