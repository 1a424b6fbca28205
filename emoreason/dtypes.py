"""The weight dtypes a config may name, and the torch dtype of each: one table for every model kind."""

from __future__ import annotations

DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")


def torch_dtype(name: str):
    """The torch dtype a config's `dtype` names (validated against DTYPES when the config loaded)."""
    import torch  # lazily: configs name dtypes without loading torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
