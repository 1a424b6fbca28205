"""Identify a checkpoint's contents, so cached features go stale when the weights change."""

from __future__ import annotations

import hashlib
from pathlib import Path

from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError

# Files whose bytes decide the features: architecture, preprocessing, weights, and shipped modeling
# code (which trust_remote_code runs).
_HASHED_NAMES: frozenset[str] = frozenset({"config.json", "preprocessor_config.json"})
_HASHED_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".pth", ".py")

# (directory, (name, size, mtime_ns) of each hashed file) -> sha256: a checkpoint is hashed once per
# process, and again only if one of its files is rewritten.
_DIGESTS: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


def model_fingerprint(model: str) -> str:
    """sha256 of a local checkpoint's files; for a hub id, "id@commit" of its local snapshot, else the id."""
    path = Path(model)
    if path.is_dir():
        return _directory_digest(path.resolve())
    try:
        config = try_to_load_from_cache(model, "config.json")
    except HFValidationError:  # neither a directory nor a well-formed hub id
        return model
    if isinstance(config, str):
        # The cache lays files out as .../snapshots/<commit>/config.json.
        return f"{model}@{Path(config).parent.name}"
    return model


def _directory_digest(directory: Path) -> str:
    files = sorted(p for p in directory.iterdir() if p.is_file() and _is_hashed(p.name))
    stats = [p.stat() for p in files]
    signature = tuple((p.name, st.st_size, st.st_mtime_ns) for p, st in zip(files, stats))
    key = (str(directory), signature)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for p, st in zip(files, stats):
            # Name and size frame each file's bytes; the name is relative, so a copy keeps the fingerprint.
            digest.update(f"{p.name}\0{st.st_size}\0".encode())
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _is_hashed(name: str) -> bool:
    return name in _HASHED_NAMES or name.endswith(_HASHED_SUFFIXES)
