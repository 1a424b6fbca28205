"""Versioned LLM-judge prompt sets: loaded from package data or a YAML file, validated, rendered.

A prompt set is a YAML mapping:

    version: emer-judge-v1           # goes into every cache key and results file
    templates:
      clue_overlap:
        placeholders: [reference, prediction]
        system: ...                  # may use placeholders too
        user: ... {reference} ... {prediction} ...
"""

from __future__ import annotations

import dataclasses
import string
from importlib import resources
from pathlib import Path

import yaml

DEFAULT_PROMPTS = "emer_judge_v1"
PROMPTS_PACKAGE = "emoreason.eval.prompts"


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    system: str
    user: str
    placeholders: tuple[str, ...]

    def messages(self, inputs: dict[str, str]) -> list[dict[str, str]]:
        """The chat messages for `inputs`; every placeholder must be given (extra keys are ignored)."""
        missing = [p for p in self.placeholders if p not in inputs]
        if missing:
            raise ValueError(f"judge template {self.name!r}: inputs lack {missing} (it needs {list(self.placeholders)})")
        values = {p: str(inputs[p]) for p in self.placeholders}
        return [{"role": "system", "content": self.system.format(**values)}, {"role": "user", "content": self.user.format(**values)}]


@dataclasses.dataclass(frozen=True)
class PromptSet:
    version: str
    templates: dict[str, Template]

    def template(self, name: str) -> Template:
        if name not in self.templates:
            raise ValueError(f"prompt set {self.version!r} has no template {name!r}; it has {sorted(self.templates)}")
        return self.templates[name]

    def render(self, name: str, inputs: dict[str, str]) -> list[dict[str, str]]:
        return self.template(name).messages(inputs)


def shipped_prompt_sets() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files(PROMPTS_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def load_prompts(source: str | Path = DEFAULT_PROMPTS) -> PromptSet:
    """A shipped prompt set by name (`emer_judge_v1`), or a YAML file in the same format."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        shipped = resources.files(PROMPTS_PACKAGE).joinpath(f"{source}.yaml")
        if not shipped.is_file():
            raise ValueError(f"no shipped judge prompt set {str(source)!r}: expected one of {shipped_prompt_sets()} or a .yaml path")
        text, where = shipped.read_text(encoding="utf-8"), f"emoreason/eval/prompts/{source}.yaml"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML: {exc}") from None
    return parse_prompts(data, where)


def parse_prompts(data, where: str) -> PromptSet:
    """Validate a loaded YAML document; errors name `where` and the offending key."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping with version and templates, got {type(data).__name__}")
    if not isinstance(data.get("version"), str) or not data["version"].strip():
        raise ValueError(f"{where}: version: expected a non-empty string")
    if not isinstance(data.get("templates"), dict) or not data["templates"]:
        raise ValueError(f"{where}: templates: expected a mapping of template name -> {{system, user, placeholders}}")
    templates = {}
    for name, spec in data["templates"].items():
        key = f"{where}: templates.{name}"
        if not isinstance(spec, dict):
            raise ValueError(f"{key}: expected a mapping with system, user, placeholders")
        for field in ("system", "user"):
            if not isinstance(spec.get(field), str) or not spec[field].strip():
                raise ValueError(f"{key}.{field}: expected a non-empty string")
        placeholders = spec.get("placeholders")
        if not isinstance(placeholders, list) or not all(isinstance(p, str) and p.isidentifier() for p in placeholders):
            raise ValueError(f"{key}.placeholders: expected a list of names, got {placeholders!r}")
        used: set[str] = set()
        for field in ("system", "user"):
            fields = _format_fields(spec[field], f"{key}.{field}")
            # "{}", "{0}" or "{a.b}" would fail (or reach into objects) only once rendered: refuse them now.
            odd = sorted(f for f in fields if not f.isidentifier())
            if odd:
                raise ValueError(f"{key}.{field}: placeholders must be plain names, got {odd}")
            undeclared = sorted(fields - set(placeholders))
            if undeclared:
                raise ValueError(f"{key}.{field}: uses placeholders {undeclared} that placeholders {placeholders} does not list")
            used |= fields
        unused = sorted(set(placeholders) - used)
        if unused:
            # An input the judge never sees would still change the cache key and mislead the reader.
            raise ValueError(f"{key}.placeholders: lists {unused}, which neither system nor user uses")
        templates[name] = Template(name, spec["system"], spec["user"], tuple(placeholders))
    return PromptSet(data["version"].strip(), templates)


def _format_fields(text: str, key: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as exc:  # an unmatched "{" or "}"
        raise ValueError(f"{key}: {exc} (write a literal brace as {{{{ or }}}})") from None
