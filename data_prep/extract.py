"""One sample through the Featurizer with the feature cache: its features as references, or why not.

A cached entry is reused only when its key matches (the media bytes, the encoder and its weights,
and every setting) and it verifies; each modality succeeds or fails on its own with a reason code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from emoreason.data_prep.prep_config import PrepConfig
from emoreason.features.cache import FeatureCache
from emoreason.features.contract import absolute_model_ref
from emoreason.features.featurizer import Absence, Featurized, Featurizer, MediaFiles, sample_files
from emoreason.schema import FeatureRef, Sample


@dataclasses.dataclass
class SampleResult:
    sample_id: str
    status: str  # "ok" | "partial" | "failed"
    issues: list[Absence]
    sample: Sample | None = None  # the sample with feature references, unless failed
    frames_decoded: int = 0

    @classmethod
    def crashed(cls, sample_id: str, exc: BaseException) -> SampleResult:
        """A sample whose processing raised: it fails alone, with the error as its reason."""
        return cls(sample_id, "failed", [Absence("*", "unreadable", f"{type(exc).__name__}: {exc}"[:500])])

    def to_status_json(self) -> dict[str, Any]:
        return {"id": self.sample_id, "status": self.status, "issues": [i.to_json() for i in self.issues]}


def prep_featurizer(cfg: PrepConfig, samples_dir: str | Path) -> Featurizer:
    return Featurizer(cfg.cached_encoders, cfg.media, cache=FeatureCache(cfg.feature_cache or Path(samples_dir) / "features"))


class SampleExtractor:
    """Computes (or finds cached) features for every configured modality of a sample."""

    def __init__(self, cfg: PrepConfig, samples_dir: str | Path, data_root: str | Path):
        self.cfg = cfg
        self.samples_dir = Path(samples_dir)
        self.data_root = Path(data_root)
        self.featurizer = prep_featurizer(cfg, samples_dir)
        # Recorded in each FeatureRef: absolute for a local checkpoint, so training can check it from anywhere.
        self.encoder_refs = {m: absolute_model_ref(e.model) for m, e in cfg.encoders.items()}

    def process(self, sample: Sample) -> SampleResult:
        return self.finish(sample, self.featurizer.featurize(self.files(sample), sample_id=sample.id,
                                                             landmarks=sample.landmarks))

    def files(self, sample: Sample) -> MediaFiles:
        return sample_files(sample, sample.media_root(self.cfg.data_root, self.data_root))

    def finish(self, sample: Sample, result: Featurized) -> SampleResult:
        """The sample with references to its (now cached) features, and its status."""
        root = sample.media_root(self.cfg.data_root, self.data_root)
        issues = list(result.absent.values())
        cache = self.featurizer.cache
        refs: dict[str, FeatureRef] = {
            m: cache.ref(m, result.cache_keys[m], self.encoder_refs[m], list(t.shape), self.samples_dir)
            for m, t in result.features.items()
        }
        failed_required = any(i.modality in self.cfg.required_modalities for i in issues)
        # With every encoder tuned (skipped here) a sample has no features to cache and is still usable.
        if (not refs and self.featurizer.modalities) or failed_required:
            return SampleResult(sample.id, "failed", issues, frames_decoded=result.frames_decoded)
        faces = result.faces if result.faces is not None else sample.faces
        out = sample.model_copy(update={"features": refs, "faces": faces, "data_root": str(root.resolve())})
        return SampleResult(sample.id, "partial" if issues else "ok", issues, out, result.frames_decoded)
