"""Find the label a free-text answer names, or say that it names none. Never guess."""

from __future__ import annotations

import re
from collections.abc import Sequence


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s-]", " ", text.lower())).strip()


def extract_label(text: str, labels: Sequence[str]) -> str | None:
    """The one label of `labels` that `text` names as a whole word; None if it names none or several."""
    norm = f" {_normalise(text)} "
    if _normalise(text) in {_normalise(label) for label in labels}:
        return next(label for label in labels if _normalise(label) == _normalise(text))
    found = [label for label in labels if f" {_normalise(label)} " in norm]
    return found[0] if len(found) == 1 else None
