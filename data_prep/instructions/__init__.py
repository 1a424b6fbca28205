"""Instruction builders: recognition (with or without valence), EMER-style explanation and chain-of-thought conversations.

`build_conversations(samples, task, modalities=..., seed=...)` fills `Sample.conversations` with a
user turn (media placeholders, subtitle, a prompt drawn from templates.yaml) and an assistant turn
built from the sample's targets. See docs/instructions.md.
"""

from __future__ import annotations

from emoreason.data_prep.instructions.answers import ANSWERS, COT_SECTIONS
from emoreason.data_prep.instructions.build import LABELLED_TASKS, TASKS, build_conversation, build_conversations, sample_rng
from emoreason.data_prep.instructions.errors import InstructionError
from emoreason.data_prep.instructions.templates import TemplateSet, load_templates

__all__ = [
    "ANSWERS",
    "COT_SECTIONS",
    "TASKS",
    "InstructionError",
    "LABELLED_TASKS",
    "TemplateSet",
    "build_conversation",
    "build_conversations",
    "load_templates",
    "sample_rng",
]
