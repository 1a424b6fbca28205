"""HFEngine: the emotion LM served with transformers `generate` on prompt embeddings.

Works on an exported directory (LoRA merged, `emoreason export`) or on a trained one (peft applies
the adapter on the fly; same outputs, slower). Per request: live features from its media
(emoreason.serving.requests), the prompt from the processor, then one `generate` per batch on
left-padded `inputs_embeds`.

Sampling follows the request alone: greedy when temperature == 0, otherwise temperature / top_p
sampling with no top-k and no repetition penalty, whatever defaults the checkpoint's
generation_config carries. A request with a seed is generated on its own (its draws must not
depend on which other requests share its batch) under a forked, seeded torch RNG.

Thread-safety: any number of threads may call generate / stream. Media extraction (shared encoders
and face detector) and generation (the LLM) each run under their own lock, so the media work of
one request overlaps the generation of another.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from emoreason.model.features import collate_features
from emoreason.model.generation import left_pad
from emoreason.model.loading import load_model
from emoreason.model.trust import UserTrust
from emoreason.serving.engine import Completion, GenerationRequest
from emoreason.serving.live_engine import LiveMediaEngine, eos_token_ids
from emoreason.serving.media_stage import MediaStageConfig
from emoreason.serving.engine import PreparedRequest


class _RowBudget(StoppingCriteria):
    """Stops each row at its own max_tokens, so requests with different budgets share a batch."""

    def __init__(self, budgets: Sequence[int], device: torch.device):
        self.budgets = torch.tensor(list(budgets), device=device)  # [b]

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        # Generating from inputs_embeds, input_ids holds only the new tokens: [b, n_new].
        return input_ids.shape[1] >= self.budgets  # [b] bool


class _Cancelled(StoppingCriteria):
    """Stops every row once the event is set (a stream whose reader went away)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _batch_key(index: int, request: GenerationRequest) -> tuple:
    """Requests that may share one `generate` call: same decoding settings, and never a seeded one."""
    if request.temperature == 0:
        return ("greedy",)
    if request.seed is not None:
        return ("seeded", index)
    return ("sample", request.temperature, request.top_p)


def plan_batches(requests: Sequence[GenerationRequest], max_batch_size: int) -> list[list[int]]:
    """Indices of `requests` grouped into generate calls of at most max_batch_size rows."""
    groups: dict[tuple, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(_batch_key(i, request), []).append(i)
    return [rows[k : k + max_batch_size] for rows in groups.values() for k in range(0, len(rows), max_batch_size)]


class HFEngine(LiveMediaEngine):
    """InferenceEngine (and BatchInferenceEngine) on transformers `generate`."""

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        max_batch_size: int = 8,
        model_name: str | None = None,
        trust: UserTrust | None = None,
        media_stage: MediaStageConfig | None = None,
    ):
        self.model, self.processor = load_model(model_dir, trust=trust)
        self._init_common(self.model.model_config, model_dir, max_batch_size, model_name, tuned=self.model.tuned_encoders,
                          media_stage=media_stage)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.eos_ids = eos_token_ids(self.processor, getattr(self.model.llm.generation_config, "eos_token_id", None))
        self._llm_lock = threading.Lock()

    def generate_prepared(self, prepared: list[PreparedRequest]) -> list[Completion]:
        completions: list[Completion | None] = [None] * len(prepared)
        for rows in plan_batches([p.request for p in prepared], self.max_batch_size):
            for i, completion in zip(rows, self._generate_batch([prepared[i] for i in rows])):
                completions[i] = completion
        return completions

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Text deltas of one completion. Media and request errors raise here, before any text."""
        return self._stream(self.prepare(request))

    def _stream(self, prepared: PreparedRequest) -> Iterator[str]:
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            try:
                self._generate_batch([prepared], streamer, cancel)
            except BaseException as exc:  # re-raised in the consumer's thread below
                failures.append(exc)
                streamer.end()  # unblocks the consumer; generate never reached its own end()

        thread = threading.Thread(target=run, name="hf-engine-stream", daemon=True)
        thread.start()
        try:
            for delta in streamer:
                if delta:
                    yield delta
        finally:
            # A reader that stops early (close(), a client that hung up) stops generation at the next token.
            cancel.set()
            thread.join()
        if failures:
            raise failures[0]

    def _generation_config(self, request: GenerationRequest, max_new_tokens: int) -> GenerationConfig:
        common = {
            "max_new_tokens": max_new_tokens,
            "repetition_penalty": 1.0,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.processor.pad_id,
        }
        if request.temperature == 0:
            return GenerationConfig(do_sample=False, **common)
        # top_k=0 disables top-k: the checkpoint's default (often 50 or 20) must not narrow sampling.
        return GenerationConfig(do_sample=True, temperature=request.temperature, top_p=request.top_p, top_k=0, **common)

    @contextlib.contextmanager
    def _seeded(self, seed: int | None) -> Iterator[None]:
        if seed is None:
            yield
            return
        # fork_rng restores the global RNG afterwards, so a request's seed leaks into nothing else.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            yield

    def _generate_batch(
        self, batch: list[PreparedRequest], streamer: TextIteratorStreamer | None = None, cancel: threading.Event | None = None
    ) -> list[Completion]:
        request = batch[0].request  # plan_batches put only requests with equal decoding settings together
        budgets = [p.request.max_tokens for p in batch]
        tensors = {k: v.to(self.device) for k, v in left_pad(self.processor.pad_id, [p.encoded for p in batch]).items()}
        features = {m: (x.to(self.device), mask.to(self.device)) for m, (x, mask) in collate_features([p.features for p in batch]).items()}
        with self._llm_lock, self._seeded(request.seed):
            start = time.perf_counter()
            new_tokens = self.model.generate(
                tensors["input_ids"],
                tensors["attention_mask"],
                tensors["media_ids"],
                features,
                generation_config=self._generation_config(request, max(budgets)),
                stopping_criteria=StoppingCriteriaList([_RowBudget(budgets, self.device)] + ([_Cancelled(cancel)] if cancel else [])),
                streamer=streamer,
            )  # [b, n_new]
            llm_seconds = time.perf_counter() - start
        return [self._completion(row.tolist(), p, llm_seconds) for row, p in zip(new_tokens.cpu(), batch)]
