"""Versioned LLM-judge prompt sets: loaded from package data or a YAML file, validated, rendered."""

from __future__ import annotations

import dataclasses
import string
from importlib import resources
from pathlib import Path

import yaml

DEFAULT_PROMPTS = "emer_judge_v1"


@dataclasses.dataclass(frozen=True)
class Template:
    name: str
    system: str
    user: str
    placeholders: tuple[str, ...]

    def messages(self, inputs: dict[str, str]) -> list[dict[str, str]]:
        missing = [p for p in self.placeholders if p not in inputs]
        if missing:
            raise ValueError(f"judge template {self.name!r}: inputs lack {missing}")
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user.format(**inputs)}]


@dataclasses.dataclass(frozen=True)
class PromptSet:
    version: str
    templates: dict[str, Template]

    def template(self, name: str) -> Template:
        if name not in self.templates:
            raise ValueError(f"prompt set {self.version!r} has no template {name!r}; it has {sorted(self.templates)}")
        return self.templates[name]


def load_prompts(source: str | Path = DEFAULT_PROMPTS) -> PromptSet:
    """A shipped prompt set by name, or a YAML file in the same format."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml"):
        text, where = path.read_text(), str(path)
    else:
        text = resources.files("emoreason.eval.prompts").joinpath(f"{source}.yaml").read_text()
        where = f"emoreason/eval/prompts/{source}.yaml"
    return parse_prompts(yaml.safe_load(text), where)


def parse_prompts(data, where: str) -> PromptSet:
    if not isinstance(data, dict) or not isinstance(data.get("version"), str) or not data["version"]:
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
        if not isinstance(placeholders, list) or not all(isinstance(p, str) for p in placeholders):
            raise ValueError(f"{key}.placeholders: expected a list of names")
        used = {f for _, f, _, _ in string.Formatter().parse(spec["user"]) if f}
        if used != set(placeholders):
            raise ValueError(f"{key}.user: uses placeholders {sorted(used)}, but placeholders lists {sorted(placeholders)}")
        templates[name] = Template(name, spec["system"], spec["user"], tuple(placeholders))
    return PromptSet(data["version"], templates)
