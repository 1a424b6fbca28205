"""Find the label (and the valence) a free-text answer names, or say that it names none. Never guess.

The valence answer format is written here too, so the instructions a model is trained on and the
parser of its answers cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s-]", " ", text.lower())).strip()


# The question `emoreason infer`, the demo and the benchmarks ask, and the first template of the
# instruction builder's recognition pool, so a model is evaluated on a prompt it was trained on.
RECOGNITION_PROMPT = "Which emotion does the person express? Answer with one label from: {labels}."

_VALENCE = re.compile(r"\bvalence\s*[:=]?\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))", re.IGNORECASE)


def format_valence_answer(label: str, valence: float) -> str:
    """The answer of the recognition-valence task, e.g. `happy; valence 2.5`."""
    return f"{label}; valence {round(float(valence), 2):g}"


def extract_valence(text: str) -> float | None:
    """The number after "valence" in `text` (`valence 2.5`, `Valence: -1`); None if none or several differ."""
    values = {float(m.group(1)) for m in _VALENCE.finditer(text)}
    return values.pop() if len(values) == 1 else None


def extract_label(text: str, labels: Sequence[str]) -> str | None:
    """The one label of `labels` that `text` names as a whole word; None if it names none or several."""
    norm = f" {_normalise(text)} "
    if _normalise(text) in {_normalise(label) for label in labels}:
        return next(label for label in labels if _normalise(label) == _normalise(text))
    found = [label for label in labels if f" {_normalise(label)} " in norm]
    return found[0] if len(found) == 1 else None
