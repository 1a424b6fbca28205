"""A content-addressed cache of processed native inputs, so training does not decode each clip every epoch.

One safetensors file per (modality, media bytes, settings): the item's tensors plus its placeholder
expansion and token count in the file's metadata. The key covers the media file's sha256 and every
setting that shapes the item (architecture, frame sampling, pixel limits, the processor configs), so
a change to any of them recomputes only what it touches. Files are written atomically; a file that
cannot be read is treated as absent and recomputed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from emoreason.atomic import atomic_path
from emoreason.features.hashing import file_content_hash, settings_hash
from emoreason.native.processor import ModalityInputs, NativeProcessor


def processor_settings(processor: NativeProcessor) -> dict[str, Any]:
    """Everything of the processor that shapes an item's tensors or text."""
    settings: dict[str, Any] = {"model_type": processor.arch.model_type, "image_seq_length": processor.image_seq_length,
                                "media": dataclasses.asdict(processor.media), "image_processor": processor.image_processor.to_dict()}
    if processor.video_settings is not None:
        settings["video"] = dataclasses.asdict(processor.video_settings)
    if processor.feature_extractor is not None:
        settings["audio"] = {k: v for k, v in processor.feature_extractor.to_dict().items() if k != "mel_filters"}
    return settings


class NativeInputCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def key(self, modality: str, media_path: str | os.PathLike, settings: dict[str, Any]) -> str:
        return settings_hash({"modality": modality, "media": file_content_hash(media_path), "settings": settings})

    def _path(self, modality: str, key: str) -> Path:
        return self.root / modality / key[:2] / f"{key}.safetensors"

    def get(self, modality: str, key: str) -> tuple[ModalityInputs, dict[str, str]] | None:
        """The cached item and its extra metadata, or None when absent or unreadable."""
        from safetensors import safe_open

        path = self._path(modality, key)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                tensors = {name: f.get_tensor(name) for name in f.keys()}
            item = ModalityInputs(modality, tensors, metadata.pop("text"), int(metadata.pop("num_tokens")))
        except Exception:  # a truncated or foreign file: recompute rather than fail the sample
            return None
        return item, metadata

    def put(self, key: str, item: ModalityInputs, extra: dict[str, Any] | None = None) -> None:
        from safetensors.torch import save_file

        metadata = {"text": item.text, "num_tokens": str(item.num_tokens)}
        metadata |= {k: json.dumps(v) for k, v in (extra or {}).items()}
        with atomic_path(self._path(item.modality, key)) as tmp:
            save_file({k: v.contiguous() for k, v in item.tensors.items()}, str(tmp), metadata=metadata)
