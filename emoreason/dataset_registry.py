"""The dataset registry: a YAML file naming data sets, so a command takes `registry:NAME` where it takes a path.

The file (`$EMOREASON_DATASETS`, else `configs/datasets.yaml` under the working directory) maps each
name to an entry:

    mer-train:
      path: ../runs/prep/mer/cot.jsonl   # relative to the registry file's folder
      format: samples                    # samples (schema JSONL), csv (a prep manifest) or paths (media list)
      split: train                       # train, validation or test; training refuses a test split
      data_root: /data/mer/clips         # media root (default: the file's folder)
      description: MER2023 train, CoT conversations

The whole file is validated when it is read; an error names the file, the entry and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from emoreason.config import ConfigError, read_yaml_file

REGISTRY_ENV = "EMOREASON_DATASETS"
DEFAULT_REGISTRY = Path("configs") / "datasets.yaml"
PREFIX = "registry:"
FORMATS = ("samples", "csv", "paths")
SPLITS = ("train", "validation", "test")
_FIELDS = ("path", "format", "split", "data_root", "description")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DatasetRegistryError(ConfigError):
    """A registry file, entry or reference that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    path: Path
    """Absolute: resolved against the registry file's folder."""
    format: str = "samples"
    split: str | None = None
    data_root: Path | None = None
    description: str | None = None
    registry: Path | None = None

    def describe(self) -> str:
        return f"entry '{self.name}' of {self.registry}"


def registry_path() -> Path:
    return Path(os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY)


def is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _entry(name: str, raw: object, registry: Path) -> DatasetEntry:
    where = f"{registry}: entry '{name}'"
    if not _NAME.match(str(name)):
        raise DatasetRegistryError(f"{where}: a name is letters, digits, '_', '.' or '-'")
    if not isinstance(raw, dict):
        raise DatasetRegistryError(f"{where}: expected a mapping with {list(_FIELDS)}, got {raw!r}")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise DatasetRegistryError(f"{where}: unknown key '{unknown[0]}' (known: {list(_FIELDS)})")
    for key in _FIELDS:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise DatasetRegistryError(f"{where}: key '{key}': expected a string, got {raw[key]!r}")
    if not raw.get("path"):
        raise DatasetRegistryError(f"{where}: key 'path' is required (the data file, relative to the registry's folder)")
    fmt = raw.get("format") or "samples"
    if fmt not in FORMATS:
        raise DatasetRegistryError(f"{where}: key 'format': expected one of {list(FORMATS)}, got {fmt!r}")
    split = raw.get("split")
    if split is not None and split not in SPLITS:
        raise DatasetRegistryError(f"{where}: key 'split': expected one of {list(SPLITS)}, got {split!r}")
    base = registry.resolve().parent
    root = raw.get("data_root")
    return DatasetEntry(
        name=str(name),
        path=base / os.path.expanduser(raw["path"]),
        format=fmt,
        split=split,
        data_root=base / os.path.expanduser(root) if root else None,
        description=raw.get("description"),
        registry=registry,
    )


def load_registry(path: str | os.PathLike | None = None) -> dict[str, DatasetEntry]:
    """Every entry of the registry file, validated."""
    registry = Path(path) if path is not None else registry_path()
    if not registry.is_file():
        hint = f" (set ${REGISTRY_ENV} to the registry file)" if path is None else ""
        raise DatasetRegistryError(f"{registry}: dataset registry not found{hint}")
    data = read_yaml_file(registry)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DatasetRegistryError(f"{registry}: expected a mapping of dataset names to entries, got {type(data).__name__}")
    return {str(name): _entry(str(name), raw, registry) for name, raw in data.items()}


def lookup(reference: str, registry: str | os.PathLike | None = None) -> DatasetEntry:
    """The entry a `registry:NAME` reference names."""
    name = reference[len(PREFIX):] if is_reference(reference) else reference
    entries = load_registry(registry)
    if name not in entries:
        where = Path(registry) if registry is not None else registry_path()
        raise DatasetRegistryError(f"{where}: no dataset named '{name}' (known: {sorted(entries) or 'none'})")
    return entries[name]


def resolve_path(value: str, role: str, formats: tuple[str, ...] = ("samples",)) -> tuple[str, DatasetEntry | None]:
    """A path as given, or the registry entry's path for `registry:NAME`; `role` names the option in errors.

    The entry's format must be one of `formats`, and its data file must exist.
    """
    if not is_reference(value):
        return value, None
    entry = lookup(value)
    if entry.format not in formats:
        raise DatasetRegistryError(f"{entry.describe()}: {role} takes format {' or '.join(formats)}, the entry's format is {entry.format!r}")
    if not entry.path.is_file():
        raise DatasetRegistryError(f"{entry.describe()}: key 'path': {entry.path} does not exist")
    return str(entry.path), entry
