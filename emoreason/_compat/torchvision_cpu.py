"""Let PyPI's CUDA torchvision wheel import beside a CPU-only torch (its Python half: transforms, io, tv_tensors).

The wheel's `_C.so` needs `libc10_cuda.so`, so `torchvision.extension` fails to load it and sets
`_has_ops()` False, which every op-registering module respects, except `_meta_registrations.py`:
it calls `torch.library.register_fake("torchvision::nms")` (and `qnms`) unguarded, and that raises
"operator torchvision::nms does not exist". transformers (video processors, the fast image
processors), peft and evaluate import torchvision whenever it is installed, so they all fail with it.

`install()` (run at interpreter start-up by the `.pth` file scripts/fix_cpu_torch_stack.py writes,
so vLLM's spawned workers get it too) puts a finder in `sys.meta_path` that waits for the import of
`torchvision._meta_registrations`. By then `torchvision.extension` has tried `_C.so`; if torch is a
CPU build and the ops did not load, the finder defines the two schemas that module registers fakes
for. Nothing else changes: torchvision's C++ ops (nms, roi_align, ...) still refuse with their own
"Couldn't load custom C++ ops" error, because `_has_ops()` stays False; transformers and vLLM only
use the pure-Python transforms. On a CUDA torch, or when `_C.so` loads, the finder does nothing.
Importing this module imports nothing heavy (no torch), as it runs in every interpreter.
"""

from __future__ import annotations

import sys

_TRIGGER = "torchvision._meta_registrations"

# The schemas torchvision's csrc/ops/nms.cpp defines; `_meta_registrations` needs them to exist.
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

# A torch.library.Library removes its definitions when it is garbage collected: keep it.
_library = None


def _op_exists(name: str) -> bool:
    import torch

    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def define_missing_schemas() -> list[str]:
    """Define the unguarded schemas when torch is a CPU build and torchvision's _C did not load; names defined."""
    global _library
    import torch

    extension = sys.modules.get("torchvision.extension")
    if torch.version.cuda is not None or getattr(torch.version, "hip", None) is not None:
        return []
    if extension is None or extension._has_ops():
        return []
    missing = [name for name in _SCHEMAS if not _op_exists(name)]
    if missing:
        if _library is None:
            _library = torch.library.Library("torchvision", "FRAGMENT")
        for name in missing:
            _library.define(_SCHEMAS[name])
    return missing


class _BeforeMetaRegistrations:
    """Runs define_missing_schemas just before torchvision._meta_registrations loads, then lets it load as usual.

    A meta path finder needs only find_spec; not subclassing importlib.abc.MetaPathFinder spares every
    interpreter start that import."""

    def find_spec(self, fullname, path, target=None):
        if fullname == _TRIGGER:
            define_missing_schemas()
        return None


def install() -> None:
    if not any(isinstance(finder, _BeforeMetaRegistrations) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BeforeMetaRegistrations())
