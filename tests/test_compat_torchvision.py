"""emoreason._compat.torchvision_cpu: PyPI's CUDA torchvision imports beside a CPU torch (its Python half), and the
hook stays out of the way where torchvision's ops load or torch has CUDA."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import pytest
import torch

from emoreason._compat import torchvision_cpu


def test_install_puts_one_finder_first_however_often_it_runs():
    torchvision_cpu.install()
    torchvision_cpu.install()
    hooks = [f for f in sys.meta_path if type(f).__name__ == "_BeforeMetaRegistrations"]
    assert len(hooks) == 1
    assert hooks[0].find_spec("json", None) is None  # every other import goes on to the normal finders


def test_nothing_is_defined_where_the_ops_loaded_or_torch_has_cuda(monkeypatch):
    loaded = types.SimpleNamespace(_has_ops=lambda: True)
    monkeypatch.setitem(sys.modules, "torchvision.extension", loaded)
    assert torchvision_cpu.define_missing_schemas() == []
    monkeypatch.setitem(sys.modules, "torchvision.extension", types.SimpleNamespace(_has_ops=lambda: False))
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    assert torchvision_cpu.define_missing_schemas() == []


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed here")
@pytest.mark.skipif(torch.version.cuda is not None, reason="a CUDA torch loads torchvision's ops itself")
def test_a_fresh_interpreter_imports_torchvision_transformers_video_and_peft():
    """Through the venv's .pth (scripts/fix_cpu_torch_stack.py), as vLLM's spawned workers start."""
    code = (
        "import torch, torchvision\n"
        "from torchvision.transforms.v2 import functional as F\n"
        "from transformers import Qwen2VLVideoProcessor\n"
        "import peft\n"
        "x = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)\n"
        "assert F.resize(x, [4, 4], antialias=True).shape == (1, 3, 4, 4)\n"
        "try:\n"
        "    torchvision.ops.nms(torch.rand(2, 4), torch.rand(2), 0.5)\n"
        "except RuntimeError as exc:\n"
        "    print('ops:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ops: Couldn't load custom C++ ops" in done.stdout  # the C++ ops stay honestly unavailable
