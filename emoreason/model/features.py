"""Encoder features for the model: from the prep cache (fast) or live from media, same values either way.

Both paths hand the projectors fp16-rounded tensors: the cache stores fp16, so live features are
rounded the same way, and a model sees identical inputs whichever path fed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from emoreason.features.cache import load_feature
from emoreason.features.featurizer import Featurized, Featurizer, sample_files
from emoreason.schema import Sample


def cached_features(sample: Sample, samples_dir: str | Path, modalities: Sequence[str]) -> dict[str, torch.Tensor]:
    """modality -> [t, d] fp16 from the sample's feature references; absent modalities are absent."""
    return {m: load_feature(ref, samples_dir, sample.id) for m, ref in sample.features.items() if m in modalities}


def live_features(
    featurizer: Featurizer, sample: Sample, data_root: str | Path, modalities: Sequence[str]
) -> tuple[dict[str, torch.Tensor], Featurized]:
    """modality -> [t, d] fp16 computed from the media now, plus the Featurizer's record (absences, faces)."""
    featurized = featurizer.featurize(sample_files(sample, data_root), list(modalities), sample_id=sample.id,
                                     landmarks=sample.landmarks)
    return featurized.features, featurized


def training_inputs(
    featurizer: Featurizer, files, modalities: Sequence[str], sample_id: str | None = None, landmarks=None,
    cached: Mapping[str, torch.Tensor] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(modality -> [t, d] fp16 of the frozen encoders, modality -> images [n, 3, H, W] for each tuned one).

    A tuned encoder (featurizer.tuned, emoreason.encoders.tuned) gets its images from the same
    Featurizer.decode as live features, then its image processor; its forward pass, with grad, is the
    model's (EmotionLM.encode_media). cached: the frozen modalities' features already read from the
    cache (only the tuned ones are decoded then); None computes them live here.
    """
    tuned = [m for m in modalities if m in featurizer.tuned]
    if cached is not None:
        features = dict(cached)
        decoded = featurizer.decode(files, tuned, sample_id, landmarks)
    else:
        decoded = featurizer.decode(files, list(modalities), sample_id, landmarks)
        features = dict(featurizer.encode(decoded, [m for m in decoded.pending if m not in tuned]).features)
    images = {m: featurizer.tuned[m].pixel_values(decoded.pending[m]) for m in tuned if m in decoded.pending}
    return features, images


def feature_lengths(sample: Sample, modalities: Sequence[str]) -> dict[str, int]:
    """Token count per modality from the references alone, without reading any tensor."""
    return {m: ref.shape[0] for m, ref in sample.features.items() if m in modalities}


def collate_features(items: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Pad per modality: modality -> (features [b, t_max, d], mask [b, t_max] True on real tokens).

    An item without a modality gets an all-False mask row; its prompt has no placeholder for it,
    so padding is never mistaken for a real feature.
    """
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    modalities = sorted({m for item in items for m in item})
    for m in modalities:
        present = [item[m] for item in items if m in item]
        dim = present[0].shape[-1]
        t_max = max(t.shape[0] for t in present)
        padded = torch.zeros(len(items), t_max, dim, dtype=present[0].dtype)
        mask = torch.zeros(len(items), t_max, dtype=torch.bool)
        for i, item in enumerate(items):
            if m in item:
                n = item[m].shape[0]
                padded[i, :n] = item[m]
                mask[i, :n] = True
        out[m] = (padded, mask)
    return out
