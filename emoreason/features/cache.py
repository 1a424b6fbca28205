"""An fp16 feature cache with one safetensors file per (sample media, modality, encoder settings).

The key hashes the media bytes, the encoder's identity (id and weight fingerprint) and every
setting that shapes the output (frame sampling, face crop, layer, pooling...), so changing any
of them reads a different entry instead of stale features. Entries are written atomically, and each
carries the sha256 of its tensor bytes in its header: every read checks the header, the dtype and
shape, that the values are finite, and the hash, so a damaged entry is named and never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save

from emoreason.atomic import atomic_path
from emoreason.features.hashing import settings_hash
from emoreason.schema import FeatureRef

# Bump when the on-disk layout or the meaning of a key changes.
CACHE_FORMAT_VERSION = 1
TENSOR_NAME = "features"
HASH_METADATA_KEY = "sha256"
"""Header metadata: sha256 of the fp16 tensor bytes. Entries written before it existed are checked without it."""


class FeatureFileError(ValueError):
    """A cached feature file that cannot be trusted: unreadable header, wrong layout, non-finite values, bad hash."""

    def __init__(self, path: str | os.PathLike, reason: str, sample_id: str | None = None):
        self.path = Path(path)
        self.reason = reason
        self.sample_id = sample_id
        where = f" (sample {sample_id})" if sample_id else ""
        super().__init__(f"{self.path}{where}: {reason}; re-run `emoreason prep` into the same output folder to recompute it")


def tensor_sha256(tensor: torch.Tensor | np.ndarray) -> str:
    array = tensor.contiguous().numpy() if isinstance(tensor, torch.Tensor) else np.ascontiguousarray(tensor)
    return hashlib.sha256(memoryview(array).cast("B")).hexdigest()


def read_feature_file(path: str | os.PathLike, shape: Sequence[int] | None = None) -> tuple[torch.Tensor, dict[str, str]]:
    """Load one entry as (features [t, d] fp16, header metadata), checked; raise FeatureFileError naming the file."""
    path = Path(path)
    try:
        # numpy, not torch: the checks are single-threaded, where torch's element-wise ops on a busy machine
        # spend ~100x longer in thread hand-offs than in the work (measured on 2 shared cores).
        with safe_open(str(path), "np") as f:
            metadata = f.metadata() or {}
            names = list(f.keys())
            if TENSOR_NAME not in names:
                raise FeatureFileError(path, f"no {TENSOR_NAME!r} tensor (found {names})")
            array = f.get_tensor(TENSOR_NAME)
    except FeatureFileError:
        raise
    except Exception as exc:  # safetensors raises its own error types for a bad header or a short file
        raise FeatureFileError(path, f"unreadable safetensors file ({type(exc).__name__}: {exc})") from None
    if array.dtype != np.float16 or array.ndim != 2:
        raise FeatureFileError(path, f"expected a 2-d float16 tensor, found {array.dtype} of shape {list(array.shape)}")
    if shape is not None and list(array.shape) != list(shape):
        raise FeatureFileError(path, f"shape {list(array.shape)}, the sample's reference says {list(shape)}")
    finite = np.isfinite(array)
    if not finite.all():
        raise FeatureFileError(path, f"{int((~finite).sum())} of {array.size} values are NaN or infinite")
    expected = metadata.get(HASH_METADATA_KEY)
    if expected is not None and tensor_sha256(array) != expected:
        raise FeatureFileError(path, "content hash mismatch (the file changed after it was written)")
    # np.array copies: the array may share memory with the file's mapping, and a later write to the file
    # would change values already verified.
    return torch.from_numpy(np.array(array)), metadata


def _sorted_header(data: bytes) -> bytes:
    """The safetensors bytes with the header's keys sorted: safetensors writes metadata in hash-map order, which
    changes from process to process, and a cache entry's bytes should depend on its content alone."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.dumps(json.loads(data[8:8 + length]), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    encoded = header.encode()
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(encoded)) + encoded + data[8 + length:]


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

    def read(self, modality: str, key: str) -> tuple[torch.Tensor, dict[str, str]] | None:
        """(features, metadata) of a verified entry, or None when it is absent or damaged (then it is recomputed)."""
        path = self.path_for(modality, key)
        if not path.exists():
            return None
        try:
            return read_feature_file(path)
        except FeatureFileError:
            return None

    def get(self, modality: str, key: str) -> torch.Tensor | None:
        entry = self.read(modality, key)
        return None if entry is None else entry[0]

    def put(self, modality: str, key: str, features: torch.Tensor, metadata: dict[str, str]) -> Path:
        path = self.path_for(modality, key)
        features = features.detach().to(torch.float16).contiguous().cpu()
        if not np.isfinite(features.numpy()).all():
            # Also catches values beyond fp16's range (|x| > 65504), which become inf on conversion.
            raise ValueError(f"{modality} encoder output has NaN or infinite values (in fp16); not caching {path}")
        data = save({TENSOR_NAME: features}, metadata=metadata | {HASH_METADATA_KEY: tensor_sha256(features)})
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(_sorted_header(data))
        return path

    def ref(self, modality: str, key: str, encoder: str, shape: list[int], relative_to: str | os.PathLike) -> FeatureRef:
        rel = os.path.relpath(self.path_for(modality, key), relative_to)
        return FeatureRef(path=Path(rel).as_posix(), key=key, encoder=encoder, shape=list(shape))


def load_feature(ref: FeatureRef, samples_dir: str | os.PathLike, sample_id: str | None = None) -> torch.Tensor:
    """Load a referenced feature tensor [t, d] (fp16), verified; paths are relative to the samples file's folder."""
    path = Path(samples_dir) / ref.path
    if not path.exists():
        raise FileNotFoundError(f"cached feature {ref.key} not found at {path}; re-run `emoreason prep`")
    try:
        return read_feature_file(path, ref.shape)[0]
    except FeatureFileError as exc:
        raise FeatureFileError(path, exc.reason, sample_id) from None


@dataclass
class BadFeatureFile:
    path: Path
    reason: str
    refs: list[tuple[str, str]] = field(default_factory=list)
    """(sample id, modality) of every reference to this file."""

    def describe(self) -> str:
        users = ", ".join(f"{sample_id} ({modality})" for sample_id, modality in self.refs[:5])
        more = f" and {len(self.refs) - 5} more" if len(self.refs) > 5 else ""
        return f"{self.path}: {self.reason} [samples: {users}{more}]"


def check_feature_refs(
    refs: Iterable[tuple[str, str, FeatureRef]], samples_dir: str | os.PathLike
) -> list[BadFeatureFile]:
    """Verify each referenced file once; refs are (sample id, modality, ref). Returns the bad files, in order found."""
    samples_dir = Path(samples_dir)
    verdicts: dict[Path, BadFeatureFile | None] = {}
    bad: list[BadFeatureFile] = []
    for sample_id, modality, ref in refs:
        path = samples_dir / ref.path
        if path not in verdicts:
            verdicts[path] = None
            if not path.exists():
                verdicts[path] = BadFeatureFile(path, "file not found")
            else:
                try:
                    read_feature_file(path, ref.shape)
                except FeatureFileError as exc:
                    verdicts[path] = BadFeatureFile(path, exc.reason)
            if verdicts[path] is not None:
                bad.append(verdicts[path])
        if verdicts[path] is not None:
            verdicts[path].refs.append((sample_id, modality))
    return bad
