"""Prompt embeddings for concurrent callers, computed in shared batches.

The vllm backend builds each prompt's embeddings itself (projectors + the LLM's embedding table).
On a CPU one projector pass over a single short prompt costs ~3 ms, mostly fixed overhead, so 32
server threads embedding one by one spend ~100 ms of the process's time where one batch spends a
few. Callers block on their own rows; a batch that fails is retried row by row, so one bad prompt
fails alone (emoreason/serving/batching.py, the media stage's encode thread too).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from emoreason.model.features import collate_features
from emoreason.model.modeling import EmotionLM
from emoreason.serving.batching import BatchWorker
from emoreason.serving.engine import PreparedRequest


class EmbedBatcher:
    def __init__(self, embedder: EmotionLM, pad_id: int, max_batch_size: int):
        self.embedder = embedder
        self.pad_id = pad_id
        self.max_batch_size = max_batch_size
        self._worker = BatchWorker(self._embed_batch, max_batch_size, "embed-batcher")

    def embed(self, prepared: Sequence[PreparedRequest]) -> list[torch.Tensor]:
        """Each prompt's embeddings [s_i, D] on the CPU; adds the projector time to media_seconds."""
        futures = [self._worker.submit(item) for item in prepared]
        return [f.result() for f in futures]

    def close(self) -> None:
        self._worker.close()

    def _embed_batch(self, prepared: list[PreparedRequest]) -> list[torch.Tensor]:
        start = time.perf_counter()
        lengths = [len(p.encoded) for p in prepared]
        width = max(lengths)
        device = self.embedder.device
        # Right padding: rows are cut back to their own length below, so padding is never attended to.
        input_ids = torch.tensor([p.encoded.input_ids + [self.pad_id] * (width - n) for p, n in zip(prepared, lengths)], device=device)
        media_ids = torch.tensor([p.encoded.media_ids + [0] * (width - n) for p, n in zip(prepared, lengths)], device=device)
        features = {m: (x.to(device), mask.to(device)) for m, (x, mask) in collate_features([p.features for p in prepared]).items()}
        with torch.inference_mode():
            embeds = self.embedder.embed(input_ids, media_ids, features).cpu()  # [b, width, D]
        share = (time.perf_counter() - start) / len(prepared)
        for p in prepared:
            p.media_seconds += share
        # clone: a row view would carry the whole batch's storage into vLLM's request
        return [embeds[i, :n].clone() for i, n in enumerate(lengths)]

