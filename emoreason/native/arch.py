"""What emoreason needs to know about each supported native backbone, keyed by its config's model_type.

One row per architecture: which media it takes, the placeholder text its processor expands, the
parameter-name prefixes of its components (llm, vision tower, audio tower, connector), and which
transformers class loads it. Callers look a backbone up here and never branch on its name.
"""

from __future__ import annotations

import dataclasses

COMPONENTS: tuple[str, ...] = ("llm", "vision", "audio", "connector")
"""Trainable parts of a native backbone; each is frozen, lora or full (emoreason.native.config)."""

NATIVE_MODALITIES: tuple[str, ...] = ("video", "image", "audio", "face")
"""Media a native backbone can take: a clip's frames as video, a still image, a clip's audio, and the
main face cropped from each sampled frame, given as extra images (on any backbone that takes images)."""


@dataclasses.dataclass(frozen=True)
class NativeArch:
    model_type: str
    """config.model_type of the checkpoint that loads as this architecture."""
    model_class: str
    """transformers class name (every one is in AutoModelForImageTextToText's mapping)."""
    modalities: tuple[str, ...]
    placeholders: dict[str, str]
    """modality -> the text the backbone's chat template writes for one item of it."""
    pad_tokens: dict[str, str]
    """modality -> the token its processor repeats once per encoder output token."""
    components: dict[str, tuple[str, ...]]
    """component -> parameter-name prefixes; a parameter belongs to the first component whose prefix it has."""
    video_style: str
    """'qwen' (frames patchified in time pairs with a grid) or 'frames' (each frame an image)."""


_QWEN_VL_COMPONENTS = {
    # The merger lives inside `visual` but is the connector, so it is listed (and matched) first.
    "connector": ("model.visual.merger.",),
    "vision": ("model.visual.",),
    "llm": ("model.language_model.", "lm_head."),
}

ARCHS: dict[str, NativeArch] = {
    "qwen2_5_vl": NativeArch(
        model_type="qwen2_5_vl",
        model_class="Qwen2_5_VLForConditionalGeneration",
        modalities=("video", "image"),
        placeholders={
            "video": "<|vision_start|><|video_pad|><|vision_end|>",
            "image": "<|vision_start|><|image_pad|><|vision_end|>",
        },
        pad_tokens={"video": "<|video_pad|>", "image": "<|image_pad|>"},
        components=_QWEN_VL_COMPONENTS,
        video_style="qwen",
    ),
    "qwen2_5_omni_thinker": NativeArch(
        model_type="qwen2_5_omni_thinker",
        model_class="Qwen2_5OmniThinkerForConditionalGeneration",
        modalities=("video", "image", "audio"),
        placeholders={
            "video": "<|vision_bos|><|VIDEO|><|vision_eos|>",
            "image": "<|vision_bos|><|IMAGE|><|vision_eos|>",
            "audio": "<|audio_bos|><|AUDIO|><|audio_eos|>",
        },
        pad_tokens={"video": "<|VIDEO|>", "image": "<|IMAGE|>", "audio": "<|AUDIO|>"},
        components={
            # audio_tower.proj maps the audio encoder into the LLM's width: the audio connector.
            "connector": ("visual.merger.", "audio_tower.proj."),
            "vision": ("visual.",),
            "audio": ("audio_tower.",),
            "llm": ("model.", "lm_head."),
        },
        video_style="qwen",
    ),
    "internvl": NativeArch(
        model_type="internvl",
        model_class="InternVLForConditionalGeneration",
        modalities=("video", "image"),
        placeholders={"video": "<video>", "image": "<IMG_CONTEXT>"},
        pad_tokens={"video": "<IMG_CONTEXT>", "image": "<IMG_CONTEXT>"},
        components={
            "connector": ("model.multi_modal_projector.",),
            "vision": ("model.vision_tower.",),
            "llm": ("model.language_model.", "lm_head."),
        },
        video_style="frames",
    ),
}

# A full Qwen2.5-Omni checkpoint (thinker + talker) is trained and served through its thinker only.
CHECKPOINT_ALIASES: dict[str, str] = {"qwen2_5_omni": "qwen2_5_omni_thinker"}


def arch_for(model_type: str, key: str = "model.base") -> NativeArch:
    """The architecture row for a checkpoint's model_type, or a ValueError naming `key`."""
    name = CHECKPOINT_ALIASES.get(model_type, model_type)
    if name not in ARCHS:
        raise ValueError(
            f"{key}: model_type {model_type!r} is not a supported native backbone; expected one of "
            f"{sorted(ARCHS) + sorted(CHECKPOINT_ALIASES)}"
        )
    return ARCHS[name]


def component_of(arch: NativeArch, param_name: str) -> str | None:
    """Which component a parameter (or module) name belongs to; None for names outside every component."""
    for component, prefixes in arch.components.items():
        if any(param_name.startswith(p) or param_name + "." == p for p in prefixes):
            return component
    return None
