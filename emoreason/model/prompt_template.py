"""A recipe's own prompt format, as data: `model.prompt: {template, subtitle, tasks, default_task}`.

Published systems wrap their media in their own literal tags, e.g. Emotion-LLaMA's
`<video><VideoHere></video> <feature><FeatureHere></feature> ... [emotion] ...`. Those tags are text here:
the template names where each modality's tokens go by *slots* (`{frame}`, `{audio}`, ... and `{fusion}`),
and the processor fills each slot with that modality's positions, never by parsing strings such as
`<video>` (which would collide with our own `<video>` placeholder). Text slots: `{instruction}` (the first
user turn, required), `{subtitle}` (the `subtitle` line filled with the sample's subtitle, or nothing when it
has none; a subtitle is shown once, `PromptTemplate.place_subtitle`) and `{task}` (the tag of the sample's
instruction task in `tasks`, else `default_task`). Literal braces are written `{{` and `}}`, as in str.format.

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
        `fields` gives the sample's `subtitle`, the `subtitle_line` its instruction already shows it in, and
        `task` (None when unknown)."""
        task = fields.get("task")
        values = {slot: media.get(slot, "") for slot in MEDIA_SLOTS}
        values["instruction"], values["subtitle"] = self.place_subtitle(instruction, fields)
        values["task"] = self.tasks.get(task, self.default_task or "") if task else (self.default_task or "")
        return self.template.format(**values)

    def place_subtitle(self, instruction: str, fields: Mapping[str, str | None]) -> tuple[str, str]:
        """(instruction, what fills `{subtitle}`): the sample's subtitle is shown once.

        The instruction builders (and infer's default prompt) write the subtitle into the user turn as a line
        of its own, which they record as `subtitle_line`. A template with a `{subtitle}` slot places the subtitle
        in the recipe's words, so that line comes out of the instruction. An instruction that quotes the subtitle
        without a recorded line (written by hand, or built before the record existed) keeps it, and the slot
        stays empty. Only a quoted subtitle counts: a short one ("no") may occur in any question's words."""
        subtitle = (fields.get("subtitle") or "").strip()
        if not subtitle or "subtitle" not in self.slots:
            return instruction, ""
        lines = instruction.split("\n")
        recorded = fields.get("subtitle_line")
        if recorded and recorded in lines:
            lines.remove(recorded)
            return "\n".join(lines), self.subtitle.format(subtitle=subtitle)
        if any(f"{open_}{subtitle}{close}" in instruction for open_, close in QUOTES):
            return instruction, ""
        return instruction, self.subtitle.format(subtitle=subtitle)


QUOTES = (('"', '"'), ("\u201c", "\u201d"), ("'", "'"))
"""The quotes an instruction may show a subtitle in (place_subtitle): straight, curly and single."""


def raise_config(key: str, expected: str) -> None:
    check(False, key, expected)


def sample_prompt_fields(sample) -> dict[str, str | None]:
    """The text slots of a schema Sample: its subtitle, and the task and subtitle line `emoreason instruct`
    recorded in its source."""
    instruction = sample.source.get("instruction")
    instruction = instruction if isinstance(instruction, dict) else {}
    task, line = instruction.get("task"), instruction.get("subtitle_line")
    return {"subtitle": sample.subtitle, "task": task if isinstance(task, str) else None,
            "subtitle_line": line if isinstance(line, str) else None}
