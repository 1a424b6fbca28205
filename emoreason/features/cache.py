"""An fp16 feature cache with one safetensors file per (sample media, modality, encoder settings).

The key hashes the media bytes, the encoder's identity (id and weight fingerprint) and every
setting that shapes the output (frame sampling, face crop, layer, pooling...), so changing any
of them reads a different entry instead of stale features. Entries are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from emoreason.atomic import atomic_path
from emoreason.features.hashing import settings_hash
from emoreason.schema import FeatureRef

# Bump when the on-disk layout or the meaning of a key changes.
CACHE_FORMAT_VERSION = 1


class FeatureCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @staticmethod
    def make_key(modality: str, media_hash: str, encoder: str, encoder_fingerprint: str, settings: dict[str, Any]) -> str:
        return settings_hash(
            {
                "format": CACHE_FORMAT_VERSION,
                "modality": modality,
                "media": media_hash,
                "encoder": encoder,
                "encoder_fingerprint": encoder_fingerprint,
                "settings": settings,
            }
        )

    def path_for(self, modality: str, key: str) -> Path:
        # Two-level fan-out keeps directories small on data sets of 100k+ clips.
        return self.root / modality / key[:2] / f"{key}.safetensors"

    def get(self, modality: str, key: str) -> torch.Tensor | None:
        path = self.path_for(modality, key)
        if not path.exists():
            return None
        try:
            return load_file(path)["features"]
        except Exception:
            return None  # an unreadable entry is recomputed, never trusted

    def put(self, modality: str, key: str, features: torch.Tensor, metadata: dict[str, str]) -> Path:
        path = self.path_for(modality, key)
        with atomic_path(path) as tmp:
            save_file({"features": features.detach().to(torch.float16).contiguous().cpu()}, str(tmp), metadata=metadata)
        return path

    def ref(self, modality: str, key: str, encoder: str, shape: list[int], relative_to: str | os.PathLike) -> FeatureRef:
        rel = os.path.relpath(self.path_for(modality, key), relative_to)
        return FeatureRef(path=Path(rel).as_posix(), key=key, encoder=encoder, shape=list(shape))


def load_feature(ref: FeatureRef, samples_dir: str | os.PathLike) -> torch.Tensor:
    """Load a referenced feature tensor [t, d] (fp16); paths are relative to the samples file's folder."""
    path = Path(samples_dir) / ref.path
    if not path.exists():
        raise FileNotFoundError(f"cached feature {ref.key} not found at {path}; re-run `emoreason prep`")
    return load_file(path)["features"]
