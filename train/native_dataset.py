"""Training samples for the native kind: schema samples with media -> backbone inputs, and their collator.

Each sample's media goes through emoreason.native.samples.encode_sample (NativeFeaturizer + the
backbone's chat template), the path a server takes for a request. Every sample is encoded once at
load: a sample that cannot be used (no conversation, a faulty clip, too long) is reported once and
skipped, the token lengths for length grouping are known, and the processed media land in the
input cache, so each later epoch reads tensors instead of decoding the clip again.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from emoreason.media.errors import MediaError
from emoreason.native.conversation import NativeConversation, NativeEncoded, collate
from emoreason.native.featurizer import NativeFeaturizer
from emoreason.native.processor import NativeProcessor
from emoreason.native.samples import encode_sample
from emoreason.schema import Sample, SchemaError, iter_samples


class NativeDataset(torch.utils.data.Dataset):
    def __init__(self, path: str | os.PathLike, featurizer: NativeFeaturizer, conversation: NativeConversation,
                 data_root: str | os.PathLike | None = None):
        self.path = Path(path)
        self.featurizer = featurizer
        self.conversation = conversation
        self.data_root = data_root
        self.epoch = 0
        errors: list[SchemaError] = []
        samples = list(iter_samples(self.path, errors))
        for exc in errors:
            print(f"emoreason train: skipped {exc}", file=sys.stderr)
        self.samples: list[Sample] = []
        self.lengths: list[int] = []
        skipped: list[tuple[str, str]] = []
        for sample in samples:
            try:
                encoded = self._encode(sample)
            except (MediaError, ValueError) as exc:
                skipped.append((sample.id, str(exc)))
                continue
            self.samples.append(sample)
            self.lengths.append(len(encoded))
        for sample_id, reason in skipped[:20]:
            print(f"emoreason train: {self.path}: skipped sample {sample_id}: {reason}", file=sys.stderr)
        if len(skipped) > 20:
            print(f"emoreason train: {self.path}: ... and {len(skipped) - 20} more skipped samples", file=sys.stderr)
        if not self.samples:
            raise ValueError(f"{self.path}: no usable sample ({len(skipped)} skipped, {len(errors)} invalid records)")

    def _encode(self, sample: Sample) -> NativeEncoded:
        root = sample.media_root(self.data_root, self.path.parent)
        encoded, _ = encode_sample(sample, root, self.featurizer, self.conversation)
        return encoded

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        return {"encoded": self._encode(sample), "sample_id": sample.id}


@dataclass
class NativeCollator:
    processor: NativeProcessor

    def __call__(self, items: list[dict]) -> dict:
        batch = collate(self.processor, [item["encoded"] for item in items], padding_side="right")
        # Ids travel with the batch so a failing step can name its samples; the trainer removes them.
        batch["sample_ids"] = [item["sample_id"] for item in items]
        return batch
