"""Assistant answers per task, built only from a sample's annotations.

A sample missing what a task needs raises InstructionError naming the field; an answer is never
left empty or padded with invented text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from emoreason.data_prep.instructions.errors import InstructionError
from emoreason.labels import format_valence_answer
from emoreason.schema import Sample

COT_SECTIONS: tuple[str, str, str] = ("Observations:", "Interpretation:", "Conclusion:")
"""Headings of the chain-of-thought answer, each at the start of its own line, in this order."""

_CLUE_NAMES = {"audio": "Audio", "face": "Face", "video": "Video", "frame": "Frame", "text": "Text"}

# (sample, clues the prompt lets a model perceive, candidate labels) -> answer text
AnswerBuilder = Callable[[Sample, dict[str, str], Sequence[str] | None], str]


def _emotion(sample: Sample) -> str | None:
    return sample.targets.emotion if sample.targets else None


def _open_vocab(sample: Sample) -> list[str]:
    return (sample.targets.open_vocab if sample.targets else None) or []


def _reasoning(sample: Sample, task: str) -> str:
    reasoning = sample.targets.reasoning if sample.targets else None
    if not reasoning:
        raise InstructionError(sample.id, "targets.reasoning", f"required by task {task!r} but missing")
    return reasoning.strip()


def _label(sample: Sample, task: str) -> str:
    """The discrete emotion, else the open-vocabulary labels joined."""
    label = _emotion(sample) or ", ".join(_open_vocab(sample))
    if not label:
        raise InstructionError(sample.id, "targets.emotion", f"required by task {task!r} (or targets.open_vocab) but missing")
    return label


def _clue_lines(clues: dict[str, str]) -> list[str]:
    return [f"- {_CLUE_NAMES[source]}: {text.strip()}" for source, text in clues.items()]


def recognition_answer(sample: Sample, clues: dict[str, str], labels: Sequence[str] | None) -> str:
    """The emotion label, which must be one of the candidates the prompt lists."""
    emotion = _emotion(sample)
    if not emotion:
        raise InstructionError(sample.id, "targets.emotion", "required by task 'recognition' but missing")
    if labels is None or emotion not in labels:
        raise InstructionError(sample.id, "targets.emotion", f"expected one of the candidate labels {list(labels or [])}, got {emotion!r}")
    return emotion


def recognition_valence_answer(sample: Sample, clues: dict[str, str], labels: Sequence[str] | None) -> str:
    """The label and the valence (what MER2023 scores), e.g. `happy; valence 2.5`."""
    emotion = recognition_answer(sample, clues, labels)
    valence = sample.targets.valence if sample.targets else None
    if valence is None:
        raise InstructionError(sample.id, "targets.valence", "required by task 'recognition-valence' but missing")
    return format_valence_answer(emotion, valence)


def open_vocab_answer(sample: Sample, clues: dict[str, str], labels: Sequence[str] | None) -> str:
    """The open-vocabulary labels, comma-separated in annotation order."""
    open_vocab = _open_vocab(sample)
    if not open_vocab:
        raise InstructionError(sample.id, "targets.open_vocab", "required by task 'open-vocab' but missing")
    return ", ".join(open_vocab)


def explanation_answer(sample: Sample, clues: dict[str, str], labels: Sequence[str] | None) -> str:
    """EMER style: the per-modality clues, then the reasoning, then the label when annotated."""
    lines = ["Clues:", *_clue_lines(clues)] if clues else []
    lines.append(f"Reasoning: {_reasoning(sample, 'explanation')}")
    label = _emotion(sample) or ", ".join(_open_vocab(sample))
    if label:
        lines.append(f"Emotion: {label}")
    return "\n".join(lines)


def cot_answer(sample: Sample, clues: dict[str, str], labels: Sequence[str] | None) -> str:
    """Observations (clues, or the subtitle when no clue is annotated), Interpretation, Conclusion."""
    reasoning, label = _reasoning(sample, "cot"), _label(sample, "cot")
    observations = _clue_lines(clues)
    if not observations and sample.subtitle:
        observations = [f'- Subtitle: "{sample.subtitle.strip()}"']
    if not observations:
        message = "required by task 'cot' for its Observations: no clue the given modalities can show, and no subtitle"
        raise InstructionError(sample.id, "targets.clues", message)
    observed, interpreted, concluded = COT_SECTIONS
    return "\n".join([observed, *observations, "", f"{interpreted} {reasoning}", "", f"{concluded} {label}"])


ANSWERS: dict[str, AnswerBuilder] = {
    "recognition": recognition_answer,
    "recognition-valence": recognition_valence_answer,
    "open-vocab": open_vocab_answer,
    "explanation": explanation_answer,
    "cot": cot_answer,
}
