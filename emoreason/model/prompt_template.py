"""A recipe's own prompt format, as data: `model.prompt: {template, subtitle, tasks, default_task}`.

Published systems wrap their media in their own literal tags, e.g. Emotion-LLaMA's
`<video><VideoHere></video> <feature><FeatureHere></feature> ... [emotion] ...`. Those tags are text here:
the template names where each modality's tokens go by *slots* (`{frame}`, `{audio}`, ... and `{fusion}`),
and the processor fills each slot with that modality's positions, never by parsing strings such as
`<video>` (which would collide with our own `<video>` placeholder). Text slots: `{instruction}` (the first
user turn, required), `{subtitle}` (the `subtitle` line filled with the sample's subtitle, or nothing when it
has none) and `{task}` (the tag of the sample's instruction task in `tasks`, else `default_task`). Literal
braces are written `{{` and `}}`, as in Python's str.format.

The template is the first user turn's content; the LLM's chat template wraps the turns (Llama-2's `[INST]`),
unless the recipe gives its own turn format as `chat_template` (Video-LLaMA's and AffectGPT's
`###Human: ... ###Assistant: ...###`), which then replaces the tokenizer's and is saved with it.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterable, Mapping

from emoreason.config import check
from emoreason.constants import MODALITIES

FUSION_SLOT = "fusion"
MEDIA_SLOTS: tuple[str, ...] = MODALITIES + (FUSION_SLOT,)
TEXT_SLOTS: tuple[str, ...] = ("instruction", "subtitle", "task")


def template_slots(template: str) -> list[str]:
    """Slot names of `template` in order; ValueError for a malformed one (an unclosed `{`)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


@dataclasses.dataclass
class PromptTemplate:
    template: str
    """The first user turn, with slots: one per modality the model takes (`{audio}`, `{face}`, `{video}`,
    `{frame}`, `{frame_cls}`, `{landmarks}` when it has a projector, `{fusion}` with pre-fusion), and the text
    slots `{instruction}` (required), `{subtitle}`, `{task}`."""
    subtitle: str = "{subtitle}"
    """What fills `{subtitle}` for a sample with a subtitle (its own `{subtitle}` slot is the text); a sample
    without one gets nothing, so the line vanishes."""
    tasks: dict[str, str] = dataclasses.field(default_factory=dict)
    """Our instruction task (`emoreason instruct --task`: recognition, explanation, cot, ...) -> the tag the
    recipe writes in `{task}` (Emotion-LLaMA: emotion, reason, reason_v2)."""
    default_task: str | None = None
    """Tag for a sample with no task recorded (chat, serving) or one missing from `tasks`."""
    chat_template: str | None = None
    """A Jinja chat template replacing the LLM tokenizer's (the recipe's own turn format); null keeps the LLM's.
    It must render conversations prefix by prefix (each answer follows its prompt), as the processor checks."""

    def __post_init__(self) -> None:
        check(isinstance(self.template, str) and self.template.strip() != "", "template", "a non-empty string", self.template)
        try:
            slots = template_slots(self.template)
            subtitle_slots = template_slots(self.subtitle)
        except ValueError as exc:
            raise_config("template", f"a str.format-style template ({exc}; write literal braces as {{{{ and }}}})")
        for slot in slots:
            check(slot in MEDIA_SLOTS + TEXT_SLOTS, "template", f"slots among {list(MEDIA_SLOTS + TEXT_SLOTS)}",
                  "{" + slot + "}")
        repeated = sorted({s for s in slots if slots.count(s) > 1})
        check(not repeated, "template", "each slot once (one input per modality a sample)", repeated)
        check("instruction" in slots, "template", "an {instruction} slot (the user's turn goes there)")
        check(subtitle_slots == ["subtitle"], "subtitle", "a line with exactly one {subtitle} slot", self.subtitle)
        if "task" in slots:
            check(self.default_task is not None, "default_task",
                  "a tag for samples without a task (the template has a {task} slot)")
        check(self.chat_template is None or (isinstance(self.chat_template, str) and "messages" in self.chat_template),
              "chat_template", "null or a Jinja template over `messages`", self.chat_template)
        for task, tag in self.tasks.items():
            check(isinstance(tag, str) and tag != "", f"tasks.{task}", "a non-empty tag string", tag)

    @property
    def slots(self) -> list[str]:
        return template_slots(self.template)

    def check_modalities(self, modalities: Iterable[str], key: str = "prompt.template") -> None:
        """ConfigError naming `key` and the slot when a modality that emits tokens has no place in the template."""
        missing = [m for m in modalities if m not in self.slots]
        check(not missing, key, "a slot for every modality the model emits tokens for",
              "no " + ", ".join("{" + m + "}" for m in missing))

    def render(self, instruction: str, media: Mapping[str, str], fields: Mapping[str, str | None]) -> str:
        """The user turn: `media` maps present slots to their markers (absent ones render empty);
        `fields` gives the sample's `subtitle` and `task` (None when unknown)."""
        subtitle = fields.get("subtitle")
        task = fields.get("task")
        values = {slot: media.get(slot, "") for slot in MEDIA_SLOTS}
        values["instruction"] = instruction
        values["subtitle"] = self.subtitle.format(subtitle=subtitle.strip()) if subtitle else ""
        values["task"] = self.tasks.get(task, self.default_task or "") if task else (self.default_task or "")
        return self.template.format(**values)


def raise_config(key: str, expected: str) -> None:
    check(False, key, expected)


def sample_prompt_fields(sample) -> dict[str, str | None]:
    """The text slots of a schema Sample: its subtitle, and the task `emoreason instruct` recorded in its source."""
    instruction = sample.source.get("instruction")
    task = instruction.get("task") if isinstance(instruction, dict) else None
    return {"subtitle": sample.subtitle, "task": task if isinstance(task, str) else None}
