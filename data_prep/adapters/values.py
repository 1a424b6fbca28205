"""Typed values from annotation cells and JSON fields, with errors at the record's location."""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from emoreason.data_prep.adapters.records import Location


def _first_column(row: Mapping[str, str], columns: Sequence[str]) -> str:
    """The first of `columns` the row has: published files spell one column several ways."""
    return next((c for c in columns if c in row), columns[0])


def cell(row: Mapping[str, str], columns: Sequence[str], loc: Location, *, required: bool = True) -> str | None:
    """A stripped cell; an empty required cell is an error, an empty optional one is None."""
    column = _first_column(row, columns)
    value = row.get(column) or None
    if value is None and required:
        raise loc.error(column, "expected a non-empty value, got an empty cell")
    return value


def parse_float(text: str | None, field: str, loc: Location) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise loc.error(field, f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise loc.error(field, f"expected a finite number, got {text!r}")
    return value


# MER2025 writes open-set labels as a Python list ("['happy', 'relieved']"); other files use JSON or
# plain comma-separated text, sometimes with the full-width Chinese comma.
_SEPARATORS = re.compile(r"[,，]")


def parse_labels(text: str | None, field: str, loc: Location) -> list[str] | None:
    """A list of labels from JSON, a Python list literal, or comma-separated text; empty means None."""
    if text is None:
        return None
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise loc.error(field, f"expected a list such as ['happy', 'relieved'], got {text!r}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise loc.error(field, f"expected a list of strings, got {text!r}")
        labels = [v.strip() for v in value]
    else:
        labels = [part.strip() for part in _SEPARATORS.split(text)]
    labels = [label for label in labels if label]
    return labels or None


def json_text(entry: Mapping[str, Any], fields: Sequence[str], loc: Location, *, join_lists: bool = False) -> str | None:
    """The first of `fields` present in a JSON entry, as stripped text; a wrong type is an error.

    With `join_lists`, a list of strings is joined with ', ' (MERR stores AU descriptions as a list).
    """
    field = next((f for f in fields if f in entry), None)
    if field is None or entry[field] is None:
        return None
    value = entry[field]
    if join_lists and isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise loc.error(field, f"expected a list of strings, got {value!r}")
        value = ", ".join(v.strip() for v in value if v.strip())
    if not isinstance(value, str):
        expected = "a string or a list of strings" if join_lists else "a string"
        raise loc.error(field, f"expected {expected}, got {value!r}")
    return value.strip() or None
