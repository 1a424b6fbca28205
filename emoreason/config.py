"""Typed dataclass configs loaded from YAML, validated on load, overridable from the CLI.

The dataclasses are the schema and YAML files are instances (litgpt style). `load_config` walks the
YAML into nested dataclasses, rejecting unknown keys and wrong types with the dotted key path, then
each dataclass's `__post_init__` checks values. CLI overrides are `a.b=value`, with the value parsed
as YAML (`workers=2`, `video.fps=null`, `encoders.audio.layer=-2`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value that fails validation; the message names the source and the dotted key."""


def check(condition: bool, key: str, expected: str, got: Any = dataclasses.MISSING) -> None:
    """For `__post_init__`: raise ConfigError naming `key` unless `condition` holds."""
    if not condition:
        detail = "" if got is dataclasses.MISSING else f", got {got!r}"
        raise ConfigError(f"key '{key}': expected {expected}{detail}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        check(value in args, key, f"one of {list(args)}", value)
        return value
    if dataclasses.is_dataclass(tp):
        check(isinstance(value, dict), key, f"a mapping for {tp.__name__}", value)
        return _build(tp, value, prefix=f"{key}.")
    if origin in (list, tuple):
        check(isinstance(value, (list, tuple)), key, "a list", value)
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        check(isinstance(value, dict), key, "a mapping", value)
        val_tp = args[1] if len(args) == 2 else Any
        return {k: _convert(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        check(isinstance(value, bool), key, "true or false", value)
        return value
    if tp is int:
        check(isinstance(value, int) and not isinstance(value, bool), key, "an integer", value)
        return value
    if tp is float:
        check(isinstance(value, (int, float)) and not isinstance(value, bool), key, "a number", value)
        return float(value)
    if tp is str:
        check(isinstance(value, str), key, "a string", value)
        return value
    return value


def _build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in data:
        if name not in fields:
            raise ConfigError(f"key '{prefix}{name}': unknown key; valid keys: {sorted(fields)}")
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{prefix}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"key '{prefix}{name}': required key is missing")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        if prefix and msg.startswith("key '"):
            msg = f"key '{prefix}{msg[5:]}"
        raise ConfigError(msg) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. workers=2")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r}: empty key")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return data


def config_from_dict(cls: type[T], data: dict[str, Any], source: str = "<config>") -> T:
    try:
        return _build(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Read YAML at `path` (optional), apply `a.b=value` overrides, validate into `cls`."""
    data: dict[str, Any] = {}
    source = "<overrides>"
    if path is not None:
        source = str(path)
        if not Path(path).exists():
            raise ConfigError(f"{path}: config file not found")
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        data = loaded or {}
    try:
        apply_overrides(data, overrides or [])
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config_from_dict(cls, data, source)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | Path) -> None:
    from emoreason.atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
