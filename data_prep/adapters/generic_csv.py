"""Any CSV with a header, given a mapping from schema fields to its column names.

    {"id": "clip", "media.video": "path", "targets.emotion": "label", "targets.valence": "v", "subtitle": "text"}

Mappable fields: id, media.video / media.audio / media.image, subtitle, targets.emotion,
targets.open_vocab, targets.valence, targets.arousal, targets.reasoning, targets.clues.<source>
(audio, face, video, frame, text) and source.<key> (free-form provenance). Numbers are parsed as
floats, open_vocab as a list (JSON, Python list literal or comma-separated); an empty cell leaves
the field out. Media columns hold paths relative to the data root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from emoreason.data_prep.adapters.records import Location, build_sample, collect_samples, read_csv_rows
from emoreason.data_prep.adapters.values import parse_float, parse_labels
from emoreason.schema import ClueSource, Sample, SchemaError

DATASET = "generic-csv"
_TEXT_FIELDS = {"id", "media.video", "media.audio", "media.image", "subtitle", "targets.emotion", "targets.reasoning"}
_FLOAT_FIELDS = {"targets.valence", "targets.arousal"}
_LIST_FIELDS = {"targets.open_vocab"}
_CLUE_FIELDS = {f"targets.clues.{source}" for source in ClueSource.__args__}
MAPPABLE_FIELDS: tuple[str, ...] = (*sorted(_TEXT_FIELDS | _FLOAT_FIELDS | _LIST_FIELDS | _CLUE_FIELDS), "source.<key>")


def check_mapping(mapping: Any) -> dict[str, str]:
    """The mapping if it maps known schema fields to column names and includes `id`; else ValueError."""
    if not isinstance(mapping, Mapping):
        raise ValueError(f"mapping: expected an object of schema field -> column name, got {type(mapping).__name__}")
    for field, column in mapping.items():
        known = field in MAPPABLE_FIELDS or (field.startswith("source.") and len(field) > len("source."))
        if not known:
            raise ValueError(f"mapping: unknown schema field {field!r}; expected one of {list(MAPPABLE_FIELDS)}")
        if not isinstance(column, str) or not column:
            raise ValueError(f"mapping: field {field!r}: expected a column name, got {column!r}")
    if "id" not in mapping:
        raise ValueError("mapping: expected an 'id' entry naming the column with sample ids")
    return dict(mapping)


def _typed(field: str, text: str, loc: Location) -> Any:
    if field in _FLOAT_FIELDS:
        return parse_float(text, field, loc)
    if field in _LIST_FIELDS:
        return parse_labels(text, field, loc)
    return text


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
) -> list[Sample]:
    """Samples from the mapped columns, typed per the schema; `source.dataset` defaults to 'generic-csv'."""
    mapping = check_mapping(mapping)

    def to_sample(row: dict[str, str], loc: Location) -> Sample:
        record: dict[str, Any] = {"source": {"dataset": DATASET}}
        for field, column in mapping.items():
            if row[column]:
                _nest(record, field, _typed(field, row[column], loc))
        if "id" not in record:
            raise loc.error("id", f"expected a non-empty id in column {mapping['id']!r}, got an empty cell")
        return build_sample(record, loc)

    return collect_samples(read_csv_rows(path, list(dict.fromkeys(mapping.values()))), to_sample, errors)
