"""NativeModelConfig: `model.kind: native`, a backbone id or path, and a training choice per component.

Checks that need only values run in `__post_init__`; checks that need the backbone's config (is it
a supported kind? does it have the components and media asked for?) run in `check_against_backbone`,
before any weights load; LoRA targets are checked against the model's modules in
emoreason.native.training, still before any training step.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from emoreason.config import ConfigError, check
from emoreason.dtypes import DTYPES
from emoreason.features.media_config import AudioDecodeConfig, FaceCropConfig
from emoreason.lora_targets import MODES
from emoreason.media.video import FrameSampling
from emoreason.native.arch import COMPONENTS, NATIVE_MODALITIES, NativeArch, arch_for


@dataclasses.dataclass
class ComponentTraining:
    mode: str = "frozen"
    """frozen (weights fixed), lora (peft adapters on its linear layers, base fixed) or full (all its weights train)."""
    lora_targets: list[str] | None = None
    """For mode lora: names (last part, e.g. q_proj, qkv, linear_1) of this component's linear layers that
    get adapters; null takes every linear layer of the component (the LM head excepted, as peft's all-linear)."""

    def __post_init__(self) -> None:
        check(self.mode in MODES, "mode", f"one of {list(MODES)}", self.mode)
        check(self.lora_targets is None or self.mode == "lora", "lora_targets", "unset unless mode is lora")
        check(self.lora_targets is None or bool(self.lora_targets), "lora_targets", "null or at least one module name")


@dataclasses.dataclass
class NativeLora:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check(self.r >= 1, "r", "an integer >= 1", self.r)
        check(self.alpha >= 1, "alpha", "an integer >= 1", self.alpha)
        check(0 <= self.dropout < 1, "dropout", "a number in [0, 1)", self.dropout)


def _default_components() -> dict[str, ComponentTraining]:
    return {"llm": ComponentTraining("lora")}


@dataclasses.dataclass
class NativeModelConfig:
    base: str
    """Hub id or local path of a supported backbone (Qwen2.5-VL, Qwen2.5-Omni or its thinker, InternVL -hf)."""
    kind: Literal["native"] = "native"
    components: dict[str, ComponentTraining] = dataclasses.field(default_factory=_default_components)
    """Training choice per component among llm, vision, audio, connector; an unlisted component is frozen."""
    lora: NativeLora = dataclasses.field(default_factory=NativeLora)
    """Rank, alpha and dropout shared by every lora component."""
    modalities: list[str] | None = None
    """Media the model takes, among video, image, audio; null takes all the backbone has towers for."""
    frames: FrameSampling = dataclasses.field(default_factory=FrameSampling)
    """Frame sampling (num_frames or fps), as for the projector model's encoders."""
    audio: AudioDecodeConfig = dataclasses.field(default_factory=AudioDecodeConfig)
    faces: FaceCropConfig | None = None
    """Crop the main face of each sampled frame and give the crops as extra images (the `face` modality,
    placed at `<face>`); null gives none."""
    video_max_pixels: int | None = None
    """Largest video frame in pixels (e.g. 100352 = 128 tokens of 28x28); null keeps the processor's."""
    video_min_pixels: int | None = None
    image_max_pixels: int | None = None
    system_prompt: str | None = None
    max_length: int = 2048
    """Longest token sequence, media tokens included."""
    dtype: str = "float32"

    def __post_init__(self) -> None:
        check(bool(self.base), "base", "a hub id or a local path of a native backbone")
        for name in self.components:
            check(name in COMPONENTS, f"components.{name}", f"a component among {list(COMPONENTS)}", name)
        check(any(c.mode != "frozen" for c in self.components.values()), "components",
              "at least one component with mode lora or full (everything frozen trains nothing)")
        for m in self.modalities or []:
            check(m in NATIVE_MODALITIES, "modalities", f"media among {list(NATIVE_MODALITIES)}", m)
        check("face" not in (self.modalities or []) or self.faces is not None, "modalities",
              "face only with a faces: section (detector, margin, size) saying how to crop them")
        for key in ("video_max_pixels", "video_min_pixels", "image_max_pixels"):
            value = getattr(self, key)
            check(value is None or value >= 28 * 28, key, "null or at least 784 (one 28x28 merged patch)", value)
        check(self.max_length >= 16, "max_length", "an integer >= 16", self.max_length)
        check(self.dtype in DTYPES, "dtype", f"one of {list(DTYPES)}", self.dtype)

    def mode(self, component: str) -> str:
        spec = self.components.get(component)
        return spec.mode if spec else "frozen"

    def check_against_backbone(self, model_type: str, prefix: str = "model.") -> NativeArch:
        """The backbone's architecture row; ConfigError for a kind, component or modality it lacks."""
        try:
            arch = arch_for(model_type, key=f"{prefix}base")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for name in self.components:
            if name not in arch.components:
                raise ConfigError(f"key '{prefix}components.{name}': {arch.model_type} has no {name} component; "
                                  f"expected one of {sorted(arch.components)}")
        for m in self.modalities or []:
            if m == "face" and "image" in arch.modalities:
                continue  # face crops go in as images
            if m not in arch.modalities:
                lacks = "has no audio tower" if m == "audio" else f"takes no {m} input"
                raise ConfigError(f"key '{prefix}modalities': {arch.model_type} {lacks}; it takes {list(arch.modalities)}")
        return arch
