"""Backend name -> engine, shared by `serve`, `chat` and `infer`.

Backends are imported only when chosen, so the hf backend never needs vLLM installed.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from emoreason.model.trust import UserTrust
from emoreason.serving.engine import BatchInferenceEngine

# backend -> (module, class, what to install when the import fails)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "hf": ("emoreason.serving.hf_engine", "HFEngine", "the core install"),
    "vllm": ("emoreason.serving.vllm_engine", "VLLMEngine", "vllm: pip install -e .[serve] (CUDA) or .[serve-cpu]"),
}


class BackendError(RuntimeError):
    """A backend that cannot be imported in this environment."""


def load_engine(
    backend: str, model_dir: str | Path, device: str = "cpu", max_batch_size: int = 8, trust: UserTrust | None = None
) -> BatchInferenceEngine:
    """The backend's engine on model_dir; trust: what the user allows beyond the directory's data."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}")
    module_name, class_name, needs = BACKENDS[backend]
    try:
        engine_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"backend {backend!r} is unavailable ({exc}); it needs {needs}") from None
    from emoreason.config import ConfigError
    from emoreason.features.featurizer import EncoderLoadError

    try:
        return engine_class(model_dir, device=device, max_batch_size=max_batch_size, trust=trust)
    except EncoderLoadError as exc:  # the model directory names an encoder that cannot load from here
        raise ConfigError(f"{model_dir}: {exc}") from None
