"""Turn labelled samples into user/assistant conversations for one task, reproducibly per seed.

The user turn is the media placeholders, the subtitle line when the sample has one, then a prompt
drawn from the task's template pool:

    <video> <audio>
    The subtitle reads: "I can't believe it."
    Which emotion does the person express? Answer with one label from: happy, sad, angry.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from emoreason.data_prep.instructions.answers import ANSWERS
from emoreason.data_prep.instructions.errors import InstructionError
from emoreason.data_prep.instructions.modalities import check_media, check_modalities, placeholder_prefix, visible_clues
from emoreason.data_prep.instructions.templates import TemplateSet, load_templates
from emoreason.schema import Sample, Turn

TASKS: tuple[str, ...] = tuple(ANSWERS)
LABELLED_TASKS: tuple[str, ...] = ("recognition", "recognition-valence")
"""Tasks whose prompts list the candidate labels."""


def sample_rng(seed: int, task: str, sample_id: str) -> random.Random:
    """An RNG per (seed, task, sample): a sample's prompt does not depend on which samples precede it.

    A string seed is hashed with SHA-512 by `random.Random`, so draws are stable across processes
    and Python versions (unlike `hash()`, which is salted per process).
    """
    return random.Random(f"{seed}/{task}/{sample_id}")


def subtitle_line(sample: Sample, templates: TemplateSet) -> str | None:
    return templates.subtitle.format(subtitle=sample.subtitle.strip()) if sample.subtitle else None


def user_prompt(sample: Sample, modalities: Sequence[str], instruction: str, templates: TemplateSet) -> str:
    lines = [placeholder_prefix(modalities)] if modalities else []
    if sample.subtitle:
        lines.append(subtitle_line(sample, templates))
    lines.append(instruction)
    return "\n".join(lines)


def subtitle_record(sample: Sample, templates: TemplateSet) -> dict[str, str]:
    """The subtitle line user_prompt wrote, for `source.instruction`: a recipe's prompt template with a `{subtitle}`
    slot places the subtitle itself and takes this line out of the instruction (emoreason.model.prompt_template)."""
    line = subtitle_line(sample, templates)
    return {"subtitle_line": line} if line else {}


def build_conversation(
    sample: Sample,
    task: str,
    modalities: Sequence[str],
    seed: int,
    labels: Sequence[str] | None,
    templates: TemplateSet,
) -> Sample:
    """A copy of `sample` with a user/assistant conversation for `task`; InstructionError if it lacks something."""
    check_media(sample, modalities)
    answer = ANSWERS[task](sample, visible_clues(sample, modalities), labels)
    template = sample_rng(seed, task, sample.id).choice(templates.tasks[task])
    instruction = template.format(labels=", ".join(labels)) if task in LABELLED_TASKS else template
    conversations = [
        Turn(role="user", content=user_prompt(sample, modalities, instruction, templates)),
        Turn(role="assistant", content=answer),
    ]
    provenance = {"task": task, "seed": seed, "templates_version": templates.version} | subtitle_record(sample, templates)
    return sample.model_copy(update={"conversations": conversations, "source": sample.source | {"instruction": provenance}})


def build_conversations(
    samples: Iterable[Sample],
    task: str,
    *,
    modalities: Sequence[str],
    seed: int = 0,
    labels: Sequence[str] | None = None,
    templates: TemplateSet | None = None,
    errors: list[InstructionError] | None = None,
) -> list[Sample]:
    """Samples with conversations for `task` (one of TASKS); `labels` are the candidates for recognition.

    With `errors=None` a sample lacking what the task needs raises InstructionError; with a list,
    it is appended there and the sample skipped, so one bad sample does not stop a batch.
    """
    if task not in ANSWERS:
        raise ValueError(f"task: expected one of {list(TASKS)}, got {task!r}")
    if task in LABELLED_TASKS and not labels:
        raise ValueError(f"labels: the {task} task needs the candidate labels its prompt lists")
    modalities = check_modalities(modalities)
    templates = templates or load_templates()
    built = []
    for sample in samples:
        try:
            built.append(build_conversation(sample, task, modalities, seed, labels, templates))
        except InstructionError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return built
