"""Typed dataclass configs loaded from YAML, validated on load, overridable from the CLI.

The dataclasses are the schema and YAML files are instances (litgpt style). `load_config` walks the
YAML into nested dataclasses, rejecting unknown keys and wrong types with the dotted key path, then
each dataclass's `__post_init__` checks values. CLI overrides are `a.b=value`, with the value parsed
as YAML (`workers=2`, `video.fps=null`, `encoders.audio.layer=-2`, `optim.learning_rate=1e-4`).

Files and overrides go through one loader, PyYAML's safe loader with YAML 1.2 floats: PyYAML
follows YAML 1.1, where `1e-4` (no dot) is a string, which is not what anyone typing a learning
rate means. An error names where the bad value came from: the file, or the override as typed.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value that fails validation; the message names the source and the dotted key."""


class Yaml12Loader(yaml.SafeLoader):
    """yaml.SafeLoader, but floats are resolved as in YAML 1.2 (`1e-4`, `5E+3`, `.5`, `-.inf`)."""


_FLOAT_TAG = "tag:yaml.org,2002:float"
_YAML12_FLOAT = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
# Drop the YAML 1.1 float rule and put the 1.2 one first, ahead of int (which it never matches: it needs a dot or an exponent).
Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules if tag != _FLOAT_TAG]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "-+0123456789.":
    Yaml12Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(0, (_FLOAT_TAG, _YAML12_FLOAT))


def load_yaml(text: str) -> Any:
    """Parse YAML text with YAML 1.2 floats; yaml.YAMLError on bad syntax."""
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


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


def override_source(text: str) -> str:
    return f"command line override {text}"


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"{override_source(text)}: expected key=value, e.g. workers=2")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"{override_source(text)}: empty key")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"{override_source(text)}: the value is not valid YAML ({exc.__class__.__name__})") from None
    return key.strip().split("."), value


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


_ERROR_KEY = re.compile(r"key '([^']+)'")


def value_source(message: str, file_source: str, overrides: list[str]) -> str:
    """The source of the value an error names: the last override of that key (or of a parent), else the file."""
    match = _ERROR_KEY.match(message)
    if match:
        key = match.group(1)
        for text in reversed(overrides):
            okey = text.split("=", 1)[0].strip()
            if key == okey or key.startswith((okey + ".", okey + "[")) or okey.startswith(key + "."):
                return override_source(text)
    return file_source


def config_from_dict(cls: type[T], data: dict[str, Any], source: str = "<config>", overrides: list[str] | None = None) -> T:
    """Validate `data` into `cls`; errors are prefixed by `source`, or by the override that set the bad key."""
    try:
        return _build(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{value_source(str(exc), source, overrides or [])}: {exc}") from None


def read_yaml_file(path: str | Path) -> Any:
    """A YAML file's content; ConfigError naming the file when it is missing or not YAML."""
    if not Path(path).exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        return load_yaml(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def read_config_data(path: str | Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The YAML mapping at `path` (optional) with `a.b=value` overrides applied, not yet validated."""
    data: dict[str, Any] = {}
    if path is not None:
        loaded = read_yaml_file(path)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        data = loaded or {}
    apply_overrides(data, overrides or [])
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Read YAML at `path` (optional), apply `a.b=value` overrides, validate into `cls`."""
    source = str(path) if path is not None else "<command line>"
    return config_from_dict(cls, read_config_data(path, overrides), source, overrides)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | Path) -> None:
    from emoreason.atomic import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
