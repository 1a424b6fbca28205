"""Prompt template pools (templates.yaml), validated on load so a typo fails before any sample is built."""

from __future__ import annotations

import dataclasses
import string
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from emoreason.config import ConfigError
from emoreason.labels import RECOGNITION_PROMPT

TASK_FIELDS: dict[str, frozenset[str]] = {
    "recognition": frozenset({"labels"}),
    "recognition-valence": frozenset({"labels"}),
    "open-vocab": frozenset(),
    "explanation": frozenset(),
    "cot": frozenset(),
}
"""Task name -> placeholders its templates must use (and are the only ones they may use)."""


@dataclasses.dataclass(frozen=True)
class TemplateSet:
    version: int
    """Bumped whenever wording changes; recorded in each built sample's source."""
    subtitle: str
    """Line added to the prompt when the sample has a subtitle; uses {subtitle}."""
    tasks: dict[str, tuple[str, ...]]
    """Task name -> pool of prompt templates."""


def _placeholders(template: str, key: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"key '{key}': expected a format string, {exc}: {template!r}") from None


def _check_template(template: Any, key: str, fields: frozenset[str]) -> str:
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"key '{key}': expected a non-empty string, got {template!r}")
    used = _placeholders(template, key)
    if used != fields:
        expected = ", ".join(f"{{{f}}}" for f in sorted(fields)) or "no placeholders"
        raise ConfigError(f"key '{key}': expected {expected}, got {template!r}")
    return template


def parse_templates(data: Any) -> TemplateSet:
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping with version, subtitle and tasks, got {type(data).__name__}")
    unknown = set(data) - {"version", "subtitle", "tasks"}
    if unknown:
        raise ConfigError(f"key '{sorted(unknown)[0]}': unknown key; valid keys: ['subtitle', 'tasks', 'version']")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"key 'version': expected an integer >= 1, got {version!r}")
    subtitle = _check_template(data.get("subtitle"), "subtitle", frozenset({"subtitle"}))
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or set(tasks) != set(TASK_FIELDS):
        got = sorted(tasks) if isinstance(tasks, dict) else tasks
        raise ConfigError(f"key 'tasks': expected a pool for each of {sorted(TASK_FIELDS)}, got {got!r}")
    pools = {}
    for task, pool in tasks.items():
        if not isinstance(pool, list) or not pool:
            raise ConfigError(f"key 'tasks.{task}': expected a non-empty list of templates, got {pool!r}")
        pools[task] = tuple(_check_template(t, f"tasks.{task}[{i}]", TASK_FIELDS[task]) for i, t in enumerate(pool))
    # The prompt infer asks is always in the recognition pool, first.
    pools["recognition"] = (RECOGNITION_PROMPT,) + tuple(t for t in pools["recognition"] if t != RECOGNITION_PROMPT)
    return TemplateSet(version=version, subtitle=subtitle, tasks=pools)


def load_templates(path: str | Path | None = None) -> TemplateSet:
    """Templates from `path`, or the packaged templates.yaml."""
    if path is None:
        source = resources.files("emoreason.data_prep.instructions") / "templates.yaml"
        name = "templates.yaml"
    else:
        source, name = Path(path), str(path)
        if not source.is_file():
            raise ConfigError(f"{path}: template file not found")
    try:
        return parse_templates(yaml.safe_load(source.read_text(encoding="utf-8")))
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
