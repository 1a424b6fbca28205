"""Open-vocabulary label lists as text, the way the official MER/AffectGPT tools read and write them.

The official pipeline stores a sample's labels as one string ("[happy, sad]" or "['happy', 'sad']")
and reads it back with `string_to_list` (MERTools, MER2025/MER2025_Track23/toolkit/utils/functions.py):
strip one leading "[" and one trailing "]", split on quotes and commas, strip each piece, drop empty
pieces. `parse_label_list` is that rule; `format_label_list` writes a string it reads back exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_SEPARATORS = re.compile(r"['\",]")
# A label holding one of these would be split (quotes, commas) or cut (brackets) by the official reader.
_UNWRITABLE = set("'\",[]")


def parse_label_list(value) -> list[str]:
    """Labels of one stored value: a list as it is, a string parsed as `string_to_list` parses it,
    None/NaN/"" as no labels."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    text = str(value)
    if not text:
        return []
    if text[0] == "[":
        text = text[1:]
    if text and text[-1] == "]":
        text = text[:-1]
    return [piece.strip() for piece in _SEPARATORS.split(text) if piece.strip() not in ("", ",")]


def label_problem(label: str) -> str | None:
    """Why `label` cannot round-trip through the official text form, or None when it can."""
    if not label.strip():
        return "is empty"
    bad = sorted(set(label) & _UNWRITABLE)
    if bad:
        return f"contains {''.join(bad)!r}, which the official reader splits or strips"
    if label != label.strip():
        return "has leading or trailing spaces, which the official reader strips"
    return None


def format_label_list(labels: Sequence[str]) -> str:
    """"[happy, sad]": the form the official extraction step writes; ValueError for a label it cannot hold."""
    for label in labels:
        if (problem := label_problem(label)) is not None:
            raise ValueError(f"label {label!r} {problem}")
    return "[" + ", ".join(labels) + "]"
