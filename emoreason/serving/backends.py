"""Backend name -> engine, shared by `serve`, `chat` and `infer`.

Backends are imported only when chosen, so the hf backend never needs vLLM installed. The engine
class comes from the model directory's kind (emoreason.model_kinds): a projector model and a native
backbone are served through the same interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from emoreason.model.trust import UserTrust
from emoreason.serving.engine import BatchInferenceEngine

if TYPE_CHECKING:
    from emoreason.serving.media_stage import MediaStageConfig

# backend -> what to install when its engine cannot be imported (the engine class comes from the model's kind)
BACKENDS: dict[str, str] = {
    "hf": "the core install",
    "vllm": "vllm: pip install -e .[serve] (CUDA) or .[serve-cpu]",
}


class BackendError(RuntimeError):
    """A backend that cannot be imported in this environment."""


def load_engine(
    backend: str, model_dir: str | Path, device: str = "cpu", max_batch_size: int = 8, trust: UserTrust | None = None,
    media_stage: MediaStageConfig | None = None,
) -> BatchInferenceEngine:
    """The backend's engine on model_dir; trust: what the user allows beyond the directory's data; media_stage:
    how concurrent requests' media is prepared (emoreason.serving.media_stage; None: its defaults); a native
    backbone's engine takes its workers, pool and retries for its decode pool."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}")
    from emoreason.model_kinds import kind_of_dir

    needs = BACKENDS[backend]
    try:
        # A folder that is no model directory goes to the default kind, whose loader names what is missing.
        engine_class = kind_of_dir(model_dir, missing_ok=True).engine_class(backend)
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"backend {backend!r} is unavailable ({exc}); it needs {needs}") from None
    from emoreason.config import ConfigError
    from emoreason.features.featurizer import EncoderLoadError

    try:
        stage = {} if media_stage is None else {"media_stage": media_stage}
        return engine_class(model_dir, device=device, max_batch_size=max_batch_size, trust=trust, **stage)
    except EncoderLoadError as exc:  # the model directory names an encoder that cannot load from here
        raise ConfigError(f"{model_dir}: {exc}") from None
