"""Training samples: conversations + features -> processor output, with optional modality dropout.

Samples must carry `conversations` (built by `emoreason instruct`). Features come from the prep
cache by default, or live from media. A LoRA-tuned encoder's (`encoders.<m>.train.mode: lora`) never
come from the cache, whatever `feature_source` says: its media is decoded here and its images go to the
model as `encoder_inputs`, which the model encodes with grad (emoreason.encoders.tuned). A sample that cannot be used (no conversation, too long,
no features at all) is reported once at load and skipped; the rest train. A referenced feature
file that fails verification (header, shape, finite values, content hash) is not skipped: loading
stops with an error naming every damaged file and its samples, before any training step.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from emoreason.encoders.config import EncoderConfig
from emoreason.features.cache import check_feature_refs
from emoreason.features.featurizer import Featurizer, sample_files
from emoreason.model.features import cached_features, feature_lengths, live_features, training_inputs
from emoreason.model.processor import EmotionProcessor
from emoreason.model.prompt_template import sample_prompt_fields
from emoreason.schema import Sample, SchemaError, iter_samples


class WrongEncoderError(ValueError):
    """Cached features made by another encoder checkpoint than the model's."""


def check_feature_encoders(path: Path, samples: list[Sample], encoders: Mapping[str, EncoderConfig], modalities: list[str]) -> None:
    """Refuse features whose FeatureRef names another checkpoint than the model's encoder (compared by content).

    Two encoders of the same width would otherwise train silently on each other's features.
    """
    from emoreason.encoders.frozen import model_fingerprint
    from emoreason.features.contract import absolute_model_ref

    def fingerprint(model: str) -> str:
        return model_fingerprint(absolute_model_ref(model))

    ours = {m: fingerprint(encoders[m].model) for m in modalities if m in encoders}
    seen: dict[tuple[str, str], bool] = {}
    for sample in samples:
        for m, ref in sample.features.items():
            if m not in ours:
                continue
            if (m, ref.encoder) not in seen:
                seen[(m, ref.encoder)] = fingerprint(ref.encoder) == ours[m]
            if not seen[(m, ref.encoder)]:
                raise WrongEncoderError(
                    f"{path}: sample {sample.id}: its {m} features were made by encoder {ref.encoder!r}, "
                    f"but the model's key 'model.encoders.{m}.model' is {encoders[m].model!r}; prep with the model's "
                    "encoder or train with prep's"
                )


class NoUsableSamplesError(ValueError):
    """A samples file with nothing to train on; the message says why (the skipped samples are listed above it)."""


class DamagedFeaturesError(ValueError):
    """Referenced feature files failed verification; the message names each file and the samples using it."""


@dataclass
class SkippedSample:
    sample_id: str
    reason: str


class EmotionDataset(torch.utils.data.Dataset):
    def __init__(
        self,
        path: str | Path,
        processor: EmotionProcessor,
        modalities: list[str],
        feature_source: str = "cache",
        live: Featurizer | None = None,
        encoders: Mapping[str, EncoderConfig] | None = None,
        data_root: str | Path | None = None,
        modality_dropout: float = 0.0,
        seed: int = 0,
    ):
        self.path = Path(path)
        if not self.path.is_file():
            raise NoUsableSamplesError(f"{self.path}: no such samples file")
        self.samples_dir = self.path.parent
        self.data_root = Path(data_root) if data_root else None  # else each sample's recorded root, else the file's folder
        self.processor = processor
        self.modalities = modalities
        self.feature_source = feature_source
        self.live = live
        # The model's tuned encoders, which the Featurizer it gave runs; their modalities skip the cache.
        self.tuned = {m: t for m, t in (live.tuned if live is not None else {}).items() if m in modalities}
        self.cached_modalities = [m for m in modalities if m not in self.tuned]
        self.modality_dropout = modality_dropout
        self.seed = seed
        self.epoch = 0
        self.skipped: list[SkippedSample] = []
        errors: list[SchemaError] = []
        self.samples: list[Sample] = []
        self.lengths: list[int] = []
        for sample in iter_samples(self.path, errors):
            length = self._check(sample)
            if length is not None:
                self.samples.append(sample)
                self.lengths.append(length)
        if self.feature_source == "cache":
            if encoders:
                check_feature_encoders(self.path, self.samples, encoders, self.cached_modalities)
            self._verify_feature_files()
        self.skipped += [SkippedSample(f"line {e.line}", str(e)) for e in errors]
        if self.skipped:
            print(f"{self.path}: skipped {len(self.skipped)} sample(s):", file=sys.stderr)
            for s in self.skipped[:20]:
                print(f"  {s.sample_id}: {s.reason}", file=sys.stderr)
        if not self.samples:
            why = f"all {len(self.skipped)} were skipped (reasons above)" if self.skipped else "the file holds no samples"
            raise NoUsableSamplesError(f"{self.path}: no usable samples: {why}")

    def _verify_feature_files(self) -> None:
        """Read and verify every referenced feature file once, so a damaged one stops the run before any step."""
        refs = ((s.id, m, ref) for s in self.samples for m, ref in s.features.items() if m in self.cached_modalities)
        bad = check_feature_refs(refs, self.samples_dir)
        if bad:
            lines = "\n".join(f"  {entry.describe()}" for entry in bad[:20])
            more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
            raise DamagedFeaturesError(
                f"{self.path}: {len(bad)} cached feature file(s) are missing or damaged:\n{lines}{more}\n"
                "Re-run `emoreason prep` into the same output folder: it verifies finished samples and recomputes them."
            )

    def _lengths(self, sample: Sample) -> dict[str, int]:
        if self.feature_source == "cache":
            return feature_lengths(sample, self.cached_modalities)
        return {}  # live: known only after extraction; checked per item

    def _check(self, sample: Sample) -> int | None:
        """Token length with media, or None (recorded in self.skipped) when the sample is unusable."""
        if not sample.conversations:
            self.skipped.append(SkippedSample(sample.id, "no conversations (build them with `emoreason instruct`)"))
            return None
        if self.feature_source == "cache" and not self._lengths(sample) and not self.tuned:
            self.skipped.append(SkippedSample(sample.id, f"no cached features for {self.modalities} (run `emoreason prep`)"))
            return None
        try:
            return len(self.processor.encode(sample.conversations, self._lengths(sample), fields=sample_prompt_fields(sample)))
        except ValueError as exc:
            self.skipped.append(SkippedSample(sample.id, str(exc)))
            return None

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def features(self, sample: Sample) -> dict[str, torch.Tensor]:
        """modality -> [t, d] fp16 for answering (held-out scoring); tuned encoders run under inference mode."""
        root = sample.media_root(self.data_root, self.samples_dir)
        if self.feature_source == "cache":
            features = cached_features(sample, self.samples_dir, self.cached_modalities)
            if self.tuned:
                features |= live_features(self.live, sample, root, list(self.tuned))[0]
            return features
        features, _ = live_features(self.live, sample, root, self.modalities)
        return features

    def training_inputs(self, sample: Sample) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(features of the frozen encoders, modality -> images [n, 3, H, W] for each tuned encoder).

        emoreason.model.features.training_inputs: the tuned encoders' forward pass (with grad) is the model's.
        """
        if not self.tuned:
            return self.features(sample), {}
        files = sample_files(sample, sample.media_root(self.data_root, self.samples_dir))
        cached = cached_features(sample, self.samples_dir, self.cached_modalities) if self.feature_source == "cache" else None
        return training_inputs(self.live, files, self.modalities, sample.id, sample.landmarks, cached)

    def _drop_modalities(self, index: int, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.modality_dropout <= 0 or len(features) < 2:
            return features
        rng = random.Random(f"{self.seed}/{self.epoch}/{index}")
        kept = {m: f for m, f in features.items() if rng.random() >= self.modality_dropout}
        if not kept:  # a sample with no media at all would teach text-only guessing
            keep = rng.choice(sorted(features))
            kept = {keep: features[keep]}
        return kept

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        features, images = self.training_inputs(sample)
        kept = self._drop_modalities(index, features | images)
        features = {m: f for m, f in features.items() if m in kept}
        images = {m: x for m, x in images.items() if m in kept}
        counts = {m: f.shape[0] for m, f in features.items()} | {m: self.tuned[m].num_tokens(x) for m, x in images.items()}
        encoded = self.processor.encode(sample.conversations, counts, fields=sample_prompt_fields(sample))
        return {
            "sample_id": sample.id,
            "input_ids": encoded.input_ids,
            "media_ids": encoded.media_ids,
            "labels": encoded.labels,
            "features": features,
            "encoder_inputs": images,
        }
