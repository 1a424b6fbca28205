"""The Featurizer's use of the feature cache: a modality's key, reading a hit (with the face record that travels
in a face entry's metadata) and writing a computed entry. The cache itself is `emoreason.features.cache`."""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from emoreason.encoders.config import EncoderConfig
from emoreason.features.cache import FeatureCache, FeatureFileError, read_feature_file
from emoreason.features.results import Featurized
from emoreason.schema import FaceRecord


def entry_key(cache: FeatureCache, encoder: EncoderConfig, modality: str, media_hash: str, settings: dict[str, Any]) -> str:
    """The key of `modality`'s entry for media of `media_hash`, encoded by `encoder` with `settings`."""
    from emoreason.encoders.fingerprint import model_fingerprint  # not via frozen: a decode worker needs no transformers

    return cache.make_key(modality, media_hash, encoder.model, model_fingerprint(encoder.model), settings)


def read_hit(cache: FeatureCache, modality: str, key: str, out: Featurized, sample_id: str | None) -> bool:
    """Put the entry's features (and, for the face modality, its face record) in `out`; False when there is no
    usable entry (absent, damaged, or a face entry without its record): the caller computes it."""
    out.cache_keys[modality] = key
    path = cache.path_for(modality, key)
    if not path.exists():
        return False
    try:
        features, metadata = read_feature_file(path)
    except FeatureFileError as exc:
        # A damaged entry is never used: say so, and let the caller recompute (and overwrite) it.
        print(f"featurizer: {path} (sample {sample_id}, {modality}): {exc.reason}; recomputing", file=sys.stderr)
        return False
    if modality == "face":
        # The face record travels in the entry's metadata, so a cache hit still knows which frames had faces.
        if "face_record" not in metadata:
            return False
        out.faces = FaceRecord.model_validate(json.loads(metadata["face_record"]))
    out.features[modality] = features
    return True


def write_entry(cache: FeatureCache, modality: str, tensor: torch.Tensor, out: Featurized, sample_id: str | None) -> None:
    """Store `modality`'s computed features under the key `read_hit` recorded in `out`."""
    metadata = {"id": sample_id or ""}
    if modality == "face" and out.faces is not None:
        metadata["face_record"] = out.faces.model_dump_json()
    cache.put(modality, out.cache_keys[modality], tensor, metadata)
