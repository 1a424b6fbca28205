"""Classes named by "package.module:ClassName" strings, checked against the interface they must implement.

Importing a module runs its code, so a spec must come from the user (their own config file or
command line), never from a file that arrived with a model or a data set. Callers that read such
files accept only the names in their allow-list of built-in classes (see emoreason.model.trust).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def resolve_plugin_class(spec: str, base: type[T], builtins: Mapping[str, type[T]], what: str) -> type[T]:
    """The class `spec` names: a built-in name, or "package.module:ClassName", which is imported here.

    The class is checked to be a subclass of `base` before anything constructs it: a constructor
    can run anything (`subprocess:Popen` runs a shell command), and a `detect` method found on the
    object afterwards would come too late.
    """
    if spec in builtins:
        return builtins[spec]
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"unknown {what} {spec!r}: expected one of {sorted(builtins)} or 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {what} module {module_name!r} (from {spec!r}): {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"{what} module {module_name!r} has no attribute {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(
            f"{what} {spec!r} is not a subclass of {base.__module__}.{base.__qualname__}; it was not constructed"
        )
    return cls
