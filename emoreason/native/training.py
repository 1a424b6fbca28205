"""Per-component training choices on a loaded backbone: frozen, peft LoRA, or full.

One peft LoraConfig carries every lora component's adapters, targeted by exact module name so a
LoRA target of one component never lands in another (the vision tower and the LLM both have
`*.proj`-style names). `full` components keep their base parameters trainable; they are saved as
a plain safetensors state of those parameters (emoreason.native.model), not through peft's
modules_to_save, which would hold a second copy of, say, a whole LLM.
"""

from __future__ import annotations

from torch import nn

from emoreason.lora_targets import match_lora_targets
from emoreason.native.arch import NativeArch, component_of
from emoreason.native.config import NativeModelConfig

def linear_names(model: nn.Module, arch: NativeArch, component: str) -> list[str]:
    """Full names of the component's nn.Linear modules."""
    return [name for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and component_of(arch, name) == component]


def lora_target_names(model: nn.Module, arch: NativeArch, cfg: NativeModelConfig, prefix: str = "model.") -> list[str]:
    """Exact module names that get adapters; ConfigError for a target that matches nothing (emoreason.lora_targets)."""
    names: list[str] = []
    for component, spec in cfg.components.items():
        if spec.mode == "lora":
            names += match_lora_targets(linear_names(model, arch, component), spec.lora_targets,
                                        f"{prefix}components.{component}", f"the {component} component of {arch.model_type}")
    return names


def apply_training(model: nn.Module, arch: NativeArch, cfg: NativeModelConfig) -> nn.Module:
    """Freeze, adapt or unfreeze each component; returns the model to train (a PeftModel when any is lora)."""
    targets = lora_target_names(model, arch, cfg)
    for param in model.parameters():
        param.requires_grad_(False)
    if targets:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=targets, bias="none")
        model = get_peft_model(model, lora)
    full = {c for c, spec in cfg.components.items() if spec.mode == "full"}
    for name, param in base_model(model).named_parameters():
        if "lora_" not in name and component_of(arch, name) in full:
            param.requires_grad_(True)
    return model


def base_model(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (its parameter names are the checkpoint's, plus lora_*)."""
    from peft import PeftModel

    return model.base_model.model if isinstance(model, PeftModel) else model


def full_state(model: nn.Module, arch: NativeArch, cfg: NativeModelConfig, state_dict: dict | None = None) -> dict:
    """The full components' parameters, named as in the checkpoint (peft's base_layer infix removed).

    state_dict: the model's state as gathered elsewhere (keys as `model.state_dict()` names them);
    None reads the parameters themselves.
    """
    from peft import PeftModel

    full = {c for c, spec in cfg.components.items() if spec.mode == "full"}
    if state_dict is None:
        items = base_model(model).named_parameters()
    else:
        prefix = "base_model.model." if isinstance(model, PeftModel) else ""
        items = ((k.removeprefix(prefix), v) for k, v in state_dict.items() if k.startswith(prefix))
    state = {}
    for name, param in items:
        if "lora_" in name:
            continue
        clean = name.replace(".base_layer.", ".")
        if component_of(arch, clean) in full:
            state[clean] = param.detach().contiguous()
    return state
