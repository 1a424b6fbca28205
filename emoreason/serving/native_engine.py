"""NativeHFEngine: a native model directory served with its backbone's own transformers `generate`.

Works on an exported directory (every LoRA merged, `emoreason export`) or a trained one (peft
applies the adapters on the fly). Per request: the media through the model's NativeFeaturizer (the
path its training data took), the conversation through the backbone's chat template, then one
`generate` per batch on left-padded input ids with the media tensors. Faults in the media are a
MediaError; a modality the media lacks loses its placeholder and nothing is filled in.

Concurrent requests' media (decode, face detection, the processor) runs in serving's DecodePool
(emoreason.serving.media_stage), `media_stage.workers` threads or spawned processes, each with its own
NativeFeaturizer and face detector; workers 0 prepares one request's media at a time behind a lock. The pool
only decides where `featurize` runs, so each request's inputs are the ones it would get alone.

Batching, sampling, seeds, streaming and thread-safety are HFEngine's (emoreason.serving.hf_engine).
"""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

import torch
from transformers import StoppingCriteriaList, TextIteratorStreamer

from emoreason.model.processor import PromptTooLong
from emoreason.model.trust import UserTrust
from emoreason.native.conversation import NativeConversation, collate
from emoreason.native.featurizer import NativeFeaturized, NativeFeaturizer
from emoreason.native.generation import eos_ids
from emoreason.native.model import NativeModel
from emoreason.serving.engine import GenerationRequest, PreparedRequest, default_model_name
from emoreason.serving.hf_engine import HFEngine, _Cancelled, _RowBudget
from emoreason.serving.media_stage import DecodePool, MediaStageConfig
from emoreason.serving.requests import check_request, media_files

# A token is rarely over this many bytes of UTF-8; a text longer than max_length of them is refused unread.
_MAX_TOKEN_BYTES = 64


def native_media_pool(featurizer: NativeFeaturizer, stage: MediaStageConfig) -> DecodePool | None:
    """A DecodePool of `stage.workers` workers each holding a NativeFeaturizer with `featurizer`'s settings (and a
    face detector of its own: OpenCV does not promise one cascade may run in several threads); None for workers 0."""
    if stage.workers == 0:
        return None
    make = functools.partial(NativeFeaturizer, featurizer.processor, featurizer.frames, featurizer.audio,
                             faces=featurizer.faces)
    return DecodePool(make, stage.workers, stage.pool, stage.retries, ready=_load_detector)


def _load_detector(featurizer: NativeFeaturizer) -> None:
    if featurizer.faces is not None:
        featurizer.detector  # a detector that cannot load fails start-up, not each request


def _featurize(featurizer: NativeFeaturizer, files, modalities: list[str]) -> NativeFeaturized:
    return featurizer.featurize(files, modalities)


class NativeHFEngine(HFEngine):
    """InferenceEngine (and BatchInferenceEngine) on a native backbone's `generate`."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", max_batch_size: int = 8, model_name: str | None = None,
                 trust: UserTrust | None = None, media_stage: MediaStageConfig | None = None):
        """media_stage: its `workers`, `pool` and `retries` size the media pool (default MediaStageConfig()); the
        projector model's encoder batching and memo have no counterpart here (the processor is the whole step)."""
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size: expected an integer >= 1, got {max_batch_size}")
        self.model, self.processor = NativeModel.from_pretrained(model_dir)
        cfg = self.model.cfg
        self.modalities = [m for m in (cfg.modalities or self.model.arch.modalities)]
        self.featurizer = NativeFeaturizer(self.processor, cfg.frames, cfg.audio, faces=cfg.faces)
        stage = MediaStageConfig() if media_stage is None else media_stage
        if stage.workers == 0:
            _load_detector(self.featurizer)
        self.conversation = NativeConversation(self.processor, cfg.system_prompt, cfg.max_length)
        self.model_name = model_name or default_model_name(model_dir)
        self.max_batch_size = max_batch_size
        self.device = torch.device(device)
        self.model.to(self.device)
        tokenizer = self.processor.tokenizer
        self.processor.pad_id = tokenizer.pad_token_id  # what HFEngine's generation config reads
        self.eos_ids = eos_ids(self.model.backbone, tokenizer)
        self._media_lock = threading.Lock()  # workers 0: one request's media at a time through self.featurizer
        # LiveMediaEngine reads `media_stage`: set, generate prepares a batch's requests at once and
        # close_media_stage closes it.
        self.media_stage = native_media_pool(self.featurizer, stage)
        self._llm_lock = threading.Lock()

    def check_prompt(self, request: GenerationRequest) -> None:
        """ValueError (PromptTooLong over max_length) for a request refused on its text alone, before any media work."""
        check_request(request)
        size = sum(len(m["content"].encode("utf-8")) for m in request.messages)
        limit = self.conversation.max_length
        if size > limit * _MAX_TOKEN_BYTES:
            raise PromptTooLong(f"conversation is at least {size // _MAX_TOKEN_BYTES} tokens of text ({size} bytes), over max_length={limit}")
        self.conversation.encode(request.messages, {}, generation_prompt=True)

    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        self.check_prompt(request)
        files = media_files(request)
        start = time.perf_counter()
        inputs, absent = {}, {}
        if files:
            if self.media_stage is not None:
                names = ", ".join(str(p) for p in files.values())
                media = self.media_stage.run(_featurize, files, self.modalities, what=names)
            else:
                with self._media_lock:
                    media = self.featurizer.featurize(files, self.modalities)
            media.raise_for_fault()
            inputs, absent = media.inputs, {m: a.reason for m, a in media.absent.items()}
        media_seconds = time.perf_counter() - start
        encoded = self.conversation.encode(request.messages, inputs, generation_prompt=True)
        return PreparedRequest(request, encoded, inputs, absent, media_seconds)

    def _generate_batch(self, batch: list[PreparedRequest], streamer: TextIteratorStreamer | None = None,
                        cancel: threading.Event | None = None):
        request = batch[0].request  # plan_batches put only requests with equal decoding settings together
        budgets = [p.request.max_tokens for p in batch]
        tensors = collate(self.processor, [p.encoded for p in batch], padding_side="left")
        tensors.pop("labels")
        tensors = {k: v.to(self.device) for k, v in tensors.items()}
        width = tensors["input_ids"].shape[1]
        # Generating from input_ids, the criteria see prompt + new tokens: each budget counts from the prompt's end.
        stopping = [_RowBudget([width + b for b in budgets], self.device)] + ([_Cancelled(cancel)] if cancel else [])
        with self._llm_lock, self._seeded(request.seed):
            start = time.perf_counter()
            out = self.model.generate(
                **tensors,
                generation_config=self._generation_config(request, max(budgets)),
                stopping_criteria=StoppingCriteriaList(stopping),
                streamer=streamer,
            )  # [b, width + n_new]
            llm_seconds = time.perf_counter() - start
        new_tokens = out[:, width:].cpu()
        return [self._completion(row.tolist(), p, llm_seconds) for row, p in zip(new_tokens, batch)]
