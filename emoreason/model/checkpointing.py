"""Gradient checkpointing on a wrapped transformers model, whatever keyword arguments the caller sends.

Trainer (transformers 5.19) calls `model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=...,
every_n_layers=..., offload=...)`, TRL's `disable_gradient_checkpointing` re-enables it with the kwargs
dict alone, and older callers send nothing. Our models (EmotionLM, NativeModel) are `nn.Module`s around
a PreTrainedModel: they forward each keyword the inner model's method accepts and drop the rest, warning
when a dropped one asked for something other than the callers' default (so nothing changes silently).
"""

from __future__ import annotations

import inspect
import warnings

# What Trainer sends when its config sets nothing: dropping these changes nothing.
CALLER_DEFAULTS = {"every_n_layers": 1, "offload": False}


def enable_gradient_checkpointing(target, gradient_checkpointing_kwargs: dict | None = None, **kwargs) -> None:
    """`target.gradient_checkpointing_enable` with non-reentrant checkpoints by default and the keywords it accepts."""
    checkpoint_kwargs = {"use_reentrant": False} | dict(gradient_checkpointing_kwargs or {})
    method = target.gradient_checkpointing_enable
    params = inspect.signature(method).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    forwarded = {k: v for k, v in kwargs.items() if takes_any or k in params}
    dropped = {k: v for k, v in kwargs.items() if k not in forwarded and CALLER_DEFAULTS.get(k, object()) != v}
    if dropped:
        warnings.warn(f"{type(target).__name__}.gradient_checkpointing_enable does not take {sorted(dropped)}; "
                      f"ignored: {dropped}", stacklevel=3)
    method(gradient_checkpointing_kwargs=checkpoint_kwargs, **forwarded)
