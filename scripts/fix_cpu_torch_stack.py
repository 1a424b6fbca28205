"""Make PyPI's CUDA-only torch add-ons coexist with a CPU-only torch.

PyPI's torchaudio is a CUDA build whose native library cannot load beside CPU torch; its pure-Python
parts (resample, fbank, MelSpectrogram) work once the .so files are gone. torchvision and torchcodec
have no usable pure-Python fallback and break `transformers` imports, so they are removed.
Does nothing on a machine where torch has CUDA or where the add-ons already load.
See ../shared/ENVIRONMENT.md for the measurements behind this.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys


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


def main() -> None:
    import torch

    if torch.version.cuda is not None:
        return
    remove_if_broken("torchvision", "torchvision")
    remove_if_broken("torchcodec", "torchcodec")
    fix_torchaudio()


if __name__ == "__main__":
    main()
