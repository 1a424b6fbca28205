"""AU-grounded chain of thought (ExpLLM style): action units -> interpretation -> conclusion.

The assistant turn has three sections, each heading at the start of its own line:

    Action units:
    - AU04 brow lowerer (intensity 2.5)
    - AU07 lid tightener

    Interpretation: Lowered, drawn-together brows and tightened lids show tension ...

    Conclusion: angry

The action units are the sample's `action_units` (codes with their FACS names, intensities where
annotated), the interpretation is `targets.reasoning`, the conclusion the label. Nothing is
invented: a sample missing any of them raises InstructionError naming the field. `parse_au_cot`
reads such an answer back into its sections, for evaluation and for checking generated data.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import yaml

from emoreason.action_units import AU_NAMES
from emoreason.config import ConfigError
from emoreason.data_prep.instructions.build import sample_rng, subtitle_record, user_prompt
from emoreason.data_prep.instructions.errors import InstructionError
from emoreason.data_prep.instructions.modalities import check_media, check_modalities
from emoreason.data_prep.instructions.templates import TemplateSet, load_templates
from emoreason.schema import Sample, Turn

TASK = "au-cot"
AU_COT_SECTIONS: tuple[str, str, str] = ("Action units:", "Interpretation:", "Conclusion:")
"""Headings of the answer, each at the start of its own line, in this order."""

# Action units are read off the face: a prompt without a visual placeholder gives no evidence for them.
_AU_SEEN_IN: frozenset[str] = frozenset({"face", "video", "frame"})
_AU_LINE = re.compile(r"^- (AU\d\d) (.+?)(?: \(intensity (\d+(?:\.\d+)?(?:e[+-]?\d+)?)\))?$")


@dataclasses.dataclass(frozen=True)
class AuCot:
    """An AU chain of thought, section by section."""

    action_units: tuple[tuple[str, float | None], ...]
    """(code, intensity or None) in answer order."""
    interpretation: str
    conclusion: str


@dataclasses.dataclass(frozen=True)
class AuCotPrompts:
    version: int
    prompts: tuple[str, ...]


def load_au_cot_prompts(path: str | Path | None = None) -> AuCotPrompts:
    """The prompt pool from `path`, or the packaged au_cot.yaml."""
    source = Path(path) if path else resources.files("emoreason.data_prep.instructions") / "au_cot.yaml"
    name = str(path or "au_cot.yaml")
    if path and not Path(path).is_file():
        raise ConfigError(f"{name}: prompt file not found")
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) != {"version", "prompts"}:
        raise ConfigError(f"{name}: expected a mapping with exactly the keys version and prompts")
    version, prompts = data["version"], data["prompts"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{name}: key 'version': expected an integer >= 1, got {version!r}")
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ConfigError(f"{name}: key 'prompts': expected a non-empty list of non-empty strings, got {prompts!r}")
    return AuCotPrompts(version, tuple(prompts))


def _intensity_text(value: float) -> str:
    return f"{value:g}"  # 2.5 -> "2.5", 3.0 -> "3": short, and float() reads it back exactly


def au_cot_answer(sample: Sample, modalities: Sequence[str]) -> str:
    """The three-section answer for `sample`; InstructionError naming the first missing field."""
    if not _AU_SEEN_IN & set(modalities):
        raise InstructionError(sample.id, "action_units", f"task {TASK!r} needs a visual modality among "
                                                          f"{sorted(_AU_SEEN_IN)} in the prompt, got {list(modalities)}")
    units = sample.action_units
    if units is None or not units.codes:
        raise InstructionError(sample.id, "action_units.codes", f"required by task {TASK!r} but missing")
    targets = sample.targets
    reasoning = targets.reasoning.strip() if targets and targets.reasoning else ""
    if not reasoning:
        raise InstructionError(sample.id, "targets.reasoning", f"required by task {TASK!r} but missing")
    label = (targets.emotion or ", ".join(targets.open_vocab or [])) if targets else ""
    if not label:
        raise InstructionError(sample.id, "targets.emotion", f"required by task {TASK!r} (or targets.open_vocab) but missing")
    intensities = units.intensities or {}
    lines = []
    for code in units.codes:
        line = f"- {code} {AU_NAMES[code]}"
        if code in intensities:
            line += f" (intensity {_intensity_text(intensities[code])})"
        lines.append(line)
    heading_units, heading_interpretation, heading_conclusion = AU_COT_SECTIONS
    return "\n".join([heading_units, *lines, "", f"{heading_interpretation} {reasoning}", "",
                      f"{heading_conclusion} {label}"])


def parse_au_cot(text: str) -> AuCot:
    """An answer's sections; ValueError naming what is missing or malformed."""
    lines = text.strip().splitlines()
    heading_units, heading_interpretation, heading_conclusion = AU_COT_SECTIONS
    starts = {}
    for heading in AU_COT_SECTIONS:
        found = [i for i, line in enumerate(lines) if line.startswith(heading)]
        if len(found) != 1:
            raise ValueError(f"AU chain of thought: expected one line starting with {heading!r}, found {len(found)}")
        starts[heading] = found[0]
    if not starts[heading_units] < starts[heading_interpretation] < starts[heading_conclusion]:
        raise ValueError(f"AU chain of thought: expected the sections in the order {list(AU_COT_SECTIONS)}")
    units = []
    for line in lines[starts[heading_units] + 1:starts[heading_interpretation]]:
        if not line.strip():
            continue
        match = _AU_LINE.match(line.strip())
        if match is None or match.group(1) not in AU_NAMES:
            raise ValueError(f"AU chain of thought: expected action unit lines like '- AU04 brow lowerer "
                             f"(intensity 2.5)', got {line!r}")
        units.append((match.group(1), float(match.group(3)) if match.group(3) else None))
    if not units:
        raise ValueError("AU chain of thought: the Action units section lists no action unit")

    def section(heading: str, end: int) -> str:
        first = lines[starts[heading]][len(heading):].strip()
        return "\n".join([first, *lines[starts[heading] + 1:end]]).strip()

    interpretation = section(heading_interpretation, starts[heading_conclusion])
    conclusion = section(heading_conclusion, len(lines))
    if not interpretation or not conclusion:
        raise ValueError("AU chain of thought: empty Interpretation or Conclusion")
    return AuCot(tuple(units), interpretation, conclusion)


def build_au_cot_conversations(
    samples: Iterable[Sample],
    *,
    modalities: Sequence[str],
    seed: int = 0,
    prompts: AuCotPrompts | None = None,
    templates: TemplateSet | None = None,
    errors: list[InstructionError] | None = None,
) -> list[Sample]:
    """Samples with an AU chain-of-thought conversation; the user turn is laid out as every other task's.

    With `errors=None` a sample lacking what the task needs raises InstructionError; with a list, it
    is appended there and the sample skipped.
    """
    modalities = check_modalities(modalities)
    prompts = prompts or load_au_cot_prompts()
    templates = templates or load_templates()  # its subtitle line, shared with the other tasks
    built = []
    for sample in samples:
        try:
            check_media(sample, modalities)
            answer = au_cot_answer(sample, modalities)
        except InstructionError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        instruction = sample_rng(seed, TASK, sample.id).choice(prompts.prompts)
        conversations = [Turn(role="user", content=user_prompt(sample, modalities, instruction, templates)),
                         Turn(role="assistant", content=answer)]
        provenance = {"task": TASK, "seed": seed, "prompts_version": prompts.version} | subtitle_record(sample, templates)
        built.append(sample.model_copy(update={"conversations": conversations,
                                               "source": sample.source | {"instruction": provenance}}))
    return built
