"""Make PyPI's CUDA-only torch add-ons coexist with a CPU-only torch.

PyPI's torchaudio is a CUDA build whose native library cannot load beside CPU torch; its pure-Python
parts (resample, fbank, MelSpectrogram) work once the .so files are gone. torchvision's Python half
(transforms, io) works once two operator schemas exist (emoreason/_compat/torchvision_cpu.py): a .pth
file installs that hook in every interpreter of the venv, vLLM's spawned workers included, and
torchvision stays (vLLM's native-backbone model files and transformers' video processors need it).
torchcodec has no usable fallback and breaks `from vllm import LLM`, so it is removed, and so is
torchvision if it still fails with the hook.
Does nothing on a machine where torch has CUDA or where the add-ons already load.
See ../shared/ENVIRONMENT.md for the measurements behind this.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import sysconfig

# Runs at every interpreter start in this venv; guarded so a venv without emoreason only skips it.
TORCHVISION_PTH = "emoreason-torchvision-cpu.pth"
TORCHVISION_PTH_LINE = ('import importlib.util as _u; _u.find_spec("emoreason") and '
                        '__import__("emoreason._compat.torchvision_cpu", fromlist=["install"]).install()\n')


def _loads(code: str) -> bool:
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def fix_torchaudio() -> None:
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or _loads("import torchaudio, torchaudio.functional"):
        return
    lib_dir = pathlib.Path(spec.origin).parent / "lib"
    for so in lib_dir.glob("*.so"):
        so.unlink()
        print(f"fix_cpu_torch_stack: removed CUDA-only {so}")
    if not _loads("import torchaudio, torchaudio.functional"):
        sys.exit("fix_cpu_torch_stack: torchaudio still fails to import after removing its native library")


def remove_if_broken(module: str, dist: str) -> None:
    if importlib.util.find_spec(module) is None or _loads(f"import {module}"):
        return
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", dist], check=True)
    print(f"fix_cpu_torch_stack: uninstalled {dist} (CUDA-only build beside a CPU torch)")


def fix_torchvision() -> None:
    """Keep PyPI's CUDA torchvision importable (Python half only) through the start-up hook, or remove it."""
    if importlib.util.find_spec("torchvision") is None or _loads("import torchvision"):
        return
    pth = pathlib.Path(sysconfig.get_paths()["purelib"]) / TORCHVISION_PTH
    pth.write_text(TORCHVISION_PTH_LINE)
    if _loads("import torchvision, torchvision.transforms.v2.functional"):
        print(f"fix_cpu_torch_stack: torchvision imports beside the CPU torch through {pth} (its C++ ops stay unavailable)")
        return
    pth.unlink()
    remove_if_broken("torchvision", "torchvision")


def main() -> None:
    import torch

    if torch.version.cuda is not None:
        return
    remove_if_broken("torchcodec", "torchcodec")
    fix_torchvision()
    fix_torchaudio()


if __name__ == "__main__":
    main()
