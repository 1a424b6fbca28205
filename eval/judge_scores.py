"""Reading a 1-10 score out of a judge's free-text reply, or saying there is none. Never guess."""

from __future__ import annotations

import re

MIN_SCORE, MAX_SCORE = 1.0, 10.0

# A signed number, so "Score: -3" is read as -3 (out of range) rather than as 3; "1,000" or "7.5.3"
# are not numbers to read a prefix of.
_NUMBER = r"(-?\d+(?:\.\d+)?)(?!\d|[.,]\d)"
# "/10", "out of 10" or "/5": a scale other than 10 makes the number meaningless here.
_SCALE = r"(?:\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?))?"
# "7-8" or "7 to 8": a range is the judge hedging, and picking either end would be a guess.
_RANGE = r"(\s*(?:-|–|to)\s*\d)?"

# Most explicit first: "Score: N" anywhere ("**Score:** 8", "Final score = 9", "the score is 6"),
# then "N out of 10" / "N/10", then a reply that is nothing but a number. "a score of 10 would need..."
# is deliberately not a score: only ":", "=" or "is" introduce one.
_EXPLICIT = re.compile(rf"\bscore\b[\s*_:=]*?(?:\bis\b)?[\s*_:=]*{_NUMBER}{_SCALE}{_RANGE}", re.IGNORECASE)
_OUT_OF = re.compile(rf"{_NUMBER}\s*(?:/|out\s+of)\s*(10)\b{_RANGE}", re.IGNORECASE)
_BARE = re.compile(rf"^\s*[*_]*\s*{_NUMBER}\s*[*_]*\s*\.?\s*$")


def parse_score(text: str | None) -> float | None:
    """The reply's final explicit score in [1, 10]; None for a reply with no usable score."""
    if not text:
        return None
    for pattern in (_EXPLICIT, _OUT_OF):
        found = list(pattern.finditer(text))
        if found:
            # The last one: a reply may quote the scale or revise itself before the final score.
            number, scale, hedged = found[-1].groups()
            if hedged or (scale is not None and float(scale) != MAX_SCORE):
                return None
            return _in_range(float(number))
    bare = _BARE.match(text)
    return _in_range(float(bare.group(1))) if bare else None


def _in_range(value: float) -> float | None:
    return value if MIN_SCORE <= value <= MAX_SCORE else None
