"""Model kinds: `model.kind` in a config, or the files of a model directory -> that kind's functions.

Like transformers' Auto mappings pick a class from a config's `model_type`, callers (export, the
serving backends, the demo) look a kind up here and never branch on it:

- `projector` (the default): frozen encoders -> projectors -> a LoRA-tuned LLM (emoreason.model);
- `native`: a multimodal backbone (Qwen2.5-VL, the Qwen2.5-Omni thinker, InternVL) tuned per
  component (emoreason.native).

Each entry names its functions as "module:attribute" strings, imported only when used, so looking
a kind up never loads torch, vLLM or a model stack it does not need. Training's half of the table
(config loading and the run) lives in emoreason.train.kinds, since the core never imports `train`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_KIND = "projector"


@dataclasses.dataclass(frozen=True)
class ModelKind:
    name: str
    marker: str
    """The file a trained or exported model directory of this kind holds (its config)."""
    engines: dict[str, str]
    """Serving backend -> "module:Class" of its engine (the BatchInferenceEngine interface)."""
    export: str
    """"module:function" (model_dir, out_dir, trust) -> Path: every LoRA merged, a serving directory."""

    def engine_class(self, backend: str):
        return load_ref(self.engines[backend])

    def export_function(self):
        return load_ref(self.export)


KINDS: dict[str, ModelKind] = {
    "projector": ModelKind(
        name="projector",
        marker="emoreason_model.json",
        engines={"hf": "emoreason.serving.hf_engine:HFEngine", "vllm": "emoreason.serving.vllm_engine:VLLMEngine"},
        export="emoreason.serving.export:export_projector_model",
    ),
    "native": ModelKind(
        name="native",
        marker="emoreason_native.json",
        engines={"hf": "emoreason.serving.native_engine:NativeHFEngine",
                 "vllm": "emoreason.serving.native_vllm:NativeVLLMEngine"},
        export="emoreason.native.model:export_model_dir",
    ),
}


def load_ref(ref: str) -> Any:
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


def kind_named(name: str, key: str = "model.kind") -> ModelKind:
    from emoreason.config import ConfigError

    if name not in KINDS:
        raise ConfigError(f"key '{key}': {name!r} is not a model kind; expected one of {sorted(KINDS)}")
    return KINDS[name]


def kind_of_config(data: Mapping[str, Any]) -> ModelKind:
    """The kind a config's `model:` block asks for (`kind`, default projector)."""
    model = data.get("model") or {}
    name = model.get("kind", DEFAULT_KIND) if isinstance(model, Mapping) else DEFAULT_KIND
    return kind_named(name if name is not None else DEFAULT_KIND)


def kind_of_dir(model_dir: str | os.PathLike, missing_ok: bool = False) -> ModelKind:
    """The kind of a trained or exported model directory, read from which config file it holds.

    missing_ok: the default kind for a folder with no marker (its own loader then says what is missing).
    """
    path = Path(model_dir)
    for kind in KINDS.values():
        if (path / kind.marker).is_file():
            return kind
    if missing_ok:
        return KINDS[DEFAULT_KIND]
    markers = " or ".join(k.marker for k in KINDS.values())
    raise FileNotFoundError(f"{model_dir}: not an emoreason model directory (no {markers})")
