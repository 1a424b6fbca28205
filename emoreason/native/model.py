"""The native model kind: a backbone loaded with the transformers Auto classes, trained per component.

A trained native model is one directory:
- `emoreason_native.json`: the NativeModelConfig (backbone id or path, per-component choices, media settings);
- `adapter/`: peft's LoRA adapters of every lora component (adapter_model.safetensors), when any;
- `full.safetensors`: the parameters of every full component, named as in the backbone checkpoint, when any;
- the backbone's processor files (tokenizer, chat template, image / video / audio processor configs).
The frozen weights are read from `base` again on load, as the projector model reads its LLM.

`export` merges every LoRA (peft merge_and_unload) and writes a plain transformers checkpoint of the
backbone with its processor files: AutoModelForImageTextToText and vLLM load it as they load the
original model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
import transformers as tf
from torch import nn

from emoreason.atomic import replace_dir, write_json_atomic
from emoreason.config import ConfigError, config_from_dict
from emoreason.hf_quiet import quiet_hf_progress
from emoreason.native.arch import NativeArch, component_of
from emoreason.native.config import NativeModelConfig
from emoreason.native.processor import NativeMediaSettings, NativeProcessor
from emoreason.native.training import apply_training, base_model, full_state

CONFIG_FILE = "emoreason_native.json"
FULL_FILE = "full.safetensors"
ADAPTER_DIR = "adapter"


def load_backbone(base: str, dtype: str = "float32", cfg: NativeModelConfig | None = None) -> tuple[nn.Module, NativeArch]:
    """The backbone's transformers model and architecture row.

    ConfigError for an unsupported kind, or for a component or modality of `cfg` the backbone lacks,
    raised from its config.json before any weights load.
    """
    config = tf.AutoConfig.from_pretrained(base)
    arch = (cfg or NativeModelConfig(base=base)).check_against_backbone(config.model_type)
    torch_dtype = getattr(torch, dtype)
    with quiet_hf_progress():
        if config.model_type == "qwen2_5_omni":
            # The thinker's base_model_prefix ("thinker") lets it load from the full Omni checkpoint.
            model = tf.Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(base, config=config.thinker_config, dtype=torch_dtype)
        else:
            model = tf.AutoModelForImageTextToText.from_pretrained(base, dtype=torch_dtype)
    return model, arch


def media_settings(cfg: NativeModelConfig) -> NativeMediaSettings:
    return NativeMediaSettings(cfg.video_max_pixels, cfg.video_min_pixels, cfg.image_max_pixels)


class NativeModel(nn.Module):
    """A backbone with its training choices applied; forward and generate are the backbone's own."""

    def __init__(self, cfg: NativeModelConfig, backbone: nn.Module, arch: NativeArch):
        super().__init__()
        self.cfg = cfg
        self.arch = arch
        self.backbone = backbone  # a PeftModel when any component is lora

    @classmethod
    def build(cls, cfg: NativeModelConfig) -> NativeModel:
        """Load cfg.base and apply the per-component choices (errors for bad components or targets come first)."""
        model, arch = load_backbone(cfg.base, cfg.dtype, cfg)
        return cls(cfg, apply_training(model, arch, cfg), arch)

    def forward(self, **batch):
        return self.backbone(**batch)

    def generate(self, **kwargs):
        return self.backbone.generate(**kwargs)

    @property
    def config(self):
        return base_model(self.backbone).config

    def trainable_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def is_gradient_checkpointing(self) -> bool:
        """As a PreTrainedModel answers it (TRL asks before generating)."""
        return base_model(self.backbone).is_gradient_checkpointing

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None, **kwargs) -> None:
        """As EmotionLM's: Trainer's every_n_layers / offload reach the backbone where it takes them."""
        from emoreason.model.checkpointing import enable_gradient_checkpointing

        enable_gradient_checkpointing(base_model(self.backbone), gradient_checkpointing_kwargs, **kwargs)

    # -- save / load ---------------------------------------------------------------------------

    def save_pretrained(self, out_dir: str | os.PathLike, processor: NativeProcessor) -> Path:
        target = Path(out_dir)
        with replace_dir(target) as staging:
            self.write_files(staging, processor)
        return target

    def write_files(self, directory: Path, processor: NativeProcessor, state_dict: dict | None = None) -> None:
        """The model directory's files into an existing folder (a Trainer checkpoint is one).

        state_dict: this module's full state as the Trainer gathered it (under ZeRO-3 the parameters
        themselves are partitioned); None reads the parameters directly.
        """
        from peft import PeftModel
        from safetensors.torch import save_file

        write_json_atomic(directory / CONFIG_FILE, dataclasses.asdict(self.cfg))
        backbone_state = None
        if state_dict is not None:
            backbone_state = {k.removeprefix("backbone."): v for k, v in state_dict.items()}
        if isinstance(self.backbone, PeftModel):
            self.backbone.save_pretrained(directory / ADAPTER_DIR, safe_serialization=True, state_dict=backbone_state)
        state = full_state(self.backbone, self.arch, self.cfg, backbone_state)
        if state:
            save_file({k: v.to("cpu").contiguous() for k, v in state.items()}, str(directory / FULL_FILE))
        processor.save_pretrained(directory)

    def load_trained_state(self, model_dir: str | os.PathLike) -> None:
        """Load the adapters and full-component weights of a saved directory into this model (resume, init_from).

        Its components that trained must train here too: frozen weights are re-read from `base` on load,
        so a trained component frozen here would lose its weights at the next save.
        """
        from safetensors.torch import load_file

        model_dir = Path(model_dir)
        saved = read_native_config(model_dir)
        for component, spec in saved.components.items():
            if spec.mode != "frozen" and self.cfg.mode(component) == "frozen":
                raise ConfigError(f"key 'model.components.{component}.mode': {model_dir} trained it ({spec.mode}); it must "
                                  "be lora or full here too, or its trained weights would be lost when this run saves")
        if (model_dir / FULL_FILE).is_file():
            unexpected = base_model(self.backbone).load_state_dict(load_file(str(model_dir / FULL_FILE)), strict=False).unexpected_keys
            if unexpected:
                raise ValueError(f"{model_dir / FULL_FILE}: parameters {unexpected[:5]} are not in the backbone {self.cfg.base}")
        adapter = model_dir / ADAPTER_DIR / "adapter_model.safetensors"
        if adapter.is_file():
            from peft import PeftModel, set_peft_model_state_dict

            if not isinstance(self.backbone, PeftModel):
                raise ConfigError(f"key 'model.components': {model_dir} has LoRA adapters but no component here is lora")
            result = set_peft_model_state_dict(self.backbone, load_file(str(adapter)))
            if result.unexpected_keys:
                raise ValueError(f"{adapter}: adapters {result.unexpected_keys[:5]} match no LoRA layer of this model "
                                 "(were they trained with other lora_targets?)")

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, trainable: bool = False) -> tuple[NativeModel, NativeProcessor]:
        """(model, processor) from a directory written by save_pretrained."""
        from safetensors.torch import load_file

        model_dir = Path(model_dir)
        cfg = read_native_config(model_dir)
        backbone, arch = load_backbone(resolve_base(cfg, model_dir), cfg.dtype)
        if (model_dir / FULL_FILE).is_file():
            state = load_file(str(model_dir / FULL_FILE))
            unexpected = backbone.load_state_dict(state, strict=False).unexpected_keys
            if unexpected:
                raise ValueError(f"{model_dir / FULL_FILE}: parameters {unexpected[:5]} are not in the backbone {cfg.base}")
        if (model_dir / ADAPTER_DIR).is_dir():
            from peft import PeftModel

            backbone = PeftModel.from_pretrained(backbone, model_dir / ADAPTER_DIR, is_trainable=trainable)
        model = cls(cfg, backbone, arch)
        if trainable:
            for name, param in base_model(backbone).named_parameters():
                if "lora_" not in name and cfg.mode(component_of(arch, name.replace(".base_layer.", ".")) or "") == "full":
                    param.requires_grad_(True)
        else:
            model.eval()
        return model, NativeProcessor.from_pretrained(model_dir, media_settings(cfg), model_type=arch.model_type)

    def merged(self) -> nn.Module:
        """The backbone with every LoRA merged into its weights (this model's adapters are consumed)."""
        from peft import PeftModel

        if isinstance(self.backbone, PeftModel):
            self.backbone = self.backbone.merge_and_unload()
        return self.backbone

    def export(self, out_dir: str | os.PathLike, processor: NativeProcessor) -> Path:
        """A plain transformers checkpoint of the merged backbone plus its processor files."""
        merged = self.merged()
        target = Path(out_dir)
        with replace_dir(target) as staging:
            with quiet_hf_progress():
                merged.save_pretrained(staging, safe_serialization=True)
            processor.save_pretrained(staging)
        return target


EXPORTED_BASE = "."
"""`base` of an exported directory's config: the merged checkpoint is the directory itself."""


def resolve_base(cfg: NativeModelConfig, model_dir: str | os.PathLike) -> str:
    return str(model_dir) if cfg.base == EXPORTED_BASE else cfg.base


def export_model_dir(model_dir: str | os.PathLike, out_dir: str | os.PathLike, trust=None) -> Path:
    """`emoreason export` for the native kind: every LoRA merged, every full component in place.

    The result is a plain transformers checkpoint (AutoModelForImageTextToText and vLLM load it as
    the original backbone) plus `emoreason_native.json` with `base: "."`, so emoreason's serving
    commands know its media settings and prompt; it loads with nothing left to apply.
    trust: unused (a native directory names no plug-in code), accepted for the export interface.
    """
    model, processor = NativeModel.from_pretrained(model_dir)
    merged = model.merged()
    exported = dataclasses.replace(model.cfg, base=EXPORTED_BASE)
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with replace_dir(target) as staging:
        with quiet_hf_progress():
            merged.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
        write_json_atomic(staging / CONFIG_FILE, dataclasses.asdict(exported))
    return target


def build_processor(cfg: NativeModelConfig) -> NativeProcessor:
    """The backbone's processor with cfg's pixel limits; ConfigError when cfg asks for more frames than it takes."""
    from emoreason.config import ConfigError

    processor = NativeProcessor.from_pretrained(cfg.base, media_settings(cfg))
    limit = processor.video_settings.max_frames if processor.video_settings is not None else None
    asked = cfg.frames.num_frames if cfg.frames.num_frames is not None else cfg.frames.max_frames
    if limit is not None and asked > limit:
        key = "num_frames" if cfg.frames.num_frames is not None else "max_frames"
        raise ConfigError(f"key 'model.frames.{key}': {asked} frames is over the video processor's max_frames={limit}")
    return processor


def read_native_config(model_dir: str | os.PathLike) -> NativeModelConfig:
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: not a native model directory (no {CONFIG_FILE})")
    return config_from_dict(NativeModelConfig, json.loads(path.read_text()), source=str(path))
