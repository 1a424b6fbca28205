"""Reading a 1-10 score out of a judge's free-text reply, or saying there is none. Never guess."""

from __future__ import annotations

import re

MIN_SCORE, MAX_SCORE = 1.0, 10.0
_NUMBER = r"(\d+(?:\.\d+)?)"
# Most explicit first: a "Score: N" line (markdown and "/10" tolerated), then "N out of 10" / "N/10",
# then a reply that is a bare number.
_EXPLICIT = re.compile(rf"score\W*?[:=]?\s*\**\s*{_NUMBER}\s*(?:/\s*10|out of 10)?", re.IGNORECASE)
_OUT_OF = re.compile(rf"{_NUMBER}\s*(?:/\s*10\b|out of 10\b)", re.IGNORECASE)
_BARE = re.compile(rf"^\s*\**\s*{_NUMBER}\s*\**\s*\.?\s*$")


def parse_score(text: str | None) -> float | None:
    """The reply's final explicit score in [1, 10]; None for a reply with no usable score."""
    if not text:
        return None
    for pattern in (_EXPLICIT, _OUT_OF):
        found = pattern.findall(text)
        if found:
            return _in_range(float(found[-1]))  # the last one: a reply may quote the scale before scoring
    bare = _BARE.match(text)
    return _in_range(float(bare.group(1))) if bare else None


def _in_range(value: float) -> float | None:
    return value if MIN_SCORE <= value <= MAX_SCORE else None
