"""Training modes and the LoRA-target rule shared by every trainable part: a native backbone's components
(emoreason.native.training) and the projector model's encoders (emoreason.encoders.tuned).

A target is the last part of a linear layer's name (`q_proj`, `qkv`, `dense`) or a full module name;
a target that matches no linear layer of the part is a ConfigError naming the key, before any training.
"""

from __future__ import annotations

from emoreason.config import ConfigError

MODES: tuple[str, ...] = ("frozen", "lora", "full")
"""frozen (weights fixed), lora (peft adapters on its linear layers, base fixed) or full (all its weights train)."""

# peft's all-linear leaves the output layer alone; so does a lora part with no explicit targets.
OUTPUT_LAYERS: tuple[str, ...] = ("lm_head",)


def match_lora_targets(linears: list[str], targets: list[str] | None, key: str, part: str) -> list[str]:
    """The names among `linears` (full module names of one part's nn.Linear layers) that get adapters.

    targets: None takes every linear layer but an output layer. key: the config section whose `lora_targets`
    and `mode` errors name (e.g. 'model.encoders.face.train'); part: what the layers belong to, for the message.
    """
    if targets is None:
        chosen = [n for n in linears if n.rsplit(".", 1)[-1] not in OUTPUT_LAYERS]
    else:
        chosen = [n for n in linears if n.rsplit(".", 1)[-1] in targets or n in targets]
        for target in targets:
            if not any(n.rsplit(".", 1)[-1] == target or n == target for n in chosen):
                available = sorted({n.rsplit(".", 1)[-1] for n in linears})
                raise ConfigError(f"key '{key}.lora_targets': {target!r} matches no linear layer of {part}; its linear layers are {available}")
    if not chosen:
        raise ConfigError(f"key '{key}.mode': lora, but {part} has no linear layer to adapt")
    return chosen
