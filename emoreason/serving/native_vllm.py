"""NativeVLLMEngine: a native model directory served by vLLM's own model files, media as `multi_modal_data`.

vLLM loads the exported checkpoint (`emoreason export`, every LoRA merged) as the original backbone
and runs its own multimodal processing: the prompt carries the backbone's placeholders unexpanded,
and the request's decoded frames (our FrameSampling, as in training), audio (16 kHz mono) or image
go in `multi_modal_data`. So continuous batching and vLLM's M-RoPE positions apply.

vLLM's model files for these backbones import transformers' image processors, which import
torchvision at module level. On a CPU-only torch, PyPI's CUDA torchvision wheel imports only with
emoreason._compat.torchvision_cpu installed (scripts/fix_cpu_torch_stack.py does it); where
torchvision still does not import, the engine refuses to start, saying so, before vLLM loads anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.media.errors import MediaError, check_file
from emoreason.media.video import DecodedFrames, FrameSampling
from emoreason.model.trust import UserTrust
from emoreason.native.conversation import NativeConversation
from emoreason.native.model import read_native_config
from emoreason.native.processor import NativeProcessor
from emoreason.serving.backends import BackendError
from emoreason.serving.engine import Completion, GenerationRequest, PreparedRequest, default_model_name
from emoreason.serving.media_stage import DecodePool, MediaStageConfig
from emoreason.serving.requests import check_request, media_files, prepare_all
from emoreason.serving.vllm_runtime import VLLMRuntime


def torchvision_problem() -> str | None:
    """Why torchvision cannot be imported here, or None when it can."""
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # a CUDA wheel beside a CPU torch fails with RuntimeError, not ImportError
        return f"{type(exc).__name__}: {exc}"
    return None


def require_torchvision(model_dir: str | Path) -> None:
    problem = torchvision_problem()
    if problem is not None:
        raise BackendError(
            f"--backend vllm cannot serve the native model {model_dir}: vLLM's model files for native backbones "
            f"(qwen2_5_vl, qwen2_5_omni_thinker, internvl) import torchvision, which does not import here ({problem}). "
            "Use --backend hf; or run scripts/fix_cpu_torch_stack.py on a CPU-only torch (it makes PyPI's torchvision "
            "importable), or use a machine whose torch and torchvision builds match (the CUDA stack)."
        )


def video_item(clip: DecodedFrames) -> tuple[np.ndarray, dict]:
    """Our sampled frames with the metadata vLLM's Qwen video path requires (`do_sample_frames: False`: taken as
    sampled). transformers derives the time positions from it as len(frames_indices) / total_num_frames * fps,
    that is frames / clip duration: the sampled_fps NativeFeaturizer gives the hf backend."""
    total = max(1, round(clip.duration * clip.source_fps))
    indices = np.rint(clip.times * clip.source_fps).astype(int).clip(0, total - 1).tolist()
    metadata = {"total_num_frames": total, "fps": clip.source_fps, "duration": clip.duration, "frames_indices": indices,
                "video_backend": "decord", "do_sample_frames": False}
    return clip.frames, metadata


def vllm_media(files: Mapping[str, Path], modalities: Sequence[str], frames: FrameSampling,
               audio_max_seconds: float | None) -> tuple[dict, dict[str, str]]:
    """modality -> what vLLM's processor takes ((frames [n, h, w, 3] uint8, metadata), (wave, rate), an image), and the
    absent modalities with their reason; files: media kind -> path (a serving request's or a training sample's)."""
    data, absent = {}, {}
    for kind, path in files.items():
        check_file(path)
        if kind == "video" and "video" in modalities:
            from emoreason.media.video import decode_frames

            data["video"] = video_item(decode_frames(path, frames))
        if kind == "image" and "image" in modalities:
            from emoreason.media.image import decode_image

            data["image"] = decode_image(path)
        if kind in ("audio", "video") and "audio" in modalities and "audio" not in data:
            from emoreason.media.audio import decode_audio

            try:
                data["audio"] = (decode_audio(path, AUDIO_SAMPLE_RATE, audio_max_seconds), AUDIO_SAMPLE_RATE)
            except MediaError as exc:
                if exc.reason != "no_audio":
                    raise
                absent["audio"] = exc.reason
    return data, absent


def _no_worker_state() -> None:
    """A decode worker's state for vllm_media, which needs none (no detector: vLLM takes no face crops)."""


def _vllm_media_in_worker(_state: None, *args):
    return vllm_media(*args)


def native_engine_args(cfg, processor: NativeProcessor, device: str, max_batch_size: int) -> dict:
    """vLLM's engine arguments (but the model) for an exported native model (cfg: its NativeModelConfig), as serving and
    GRPO rollouts start it: one item per modality a prompt may carry."""
    return {"max_model_len": cfg.max_length, "max_num_seqs": max_batch_size, "enforce_eager": device == "cpu",
            "limit_mm_per_prompt": {m: 1 for m in processor.arch.modalities}, "dtype": cfg.dtype}


class NativeVLLMEngine:
    """InferenceEngine (and BatchInferenceEngine) on vLLM with the backbone's own multimodal processing.

    vLLM's AsyncLLM runs in a VLLMRuntime (a private event loop thread, as in VLLMEngine), so requests
    from concurrent callers (the server's thread pool, infer's batches) share its continuous batching.
    Text is decoded from the token ids here, as NativeHFEngine decodes them, so both give the same text;
    `stream` sends deltas of that decoding."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", max_batch_size: int = 8, model_name: str | None = None,
                 trust: UserTrust | None = None, media_stage: MediaStageConfig | None = None):
        """media_stage: its `workers`, `pool` and `retries` size the requests' decode pool (default MediaStageConfig();
        workers 0: each request decodes in its caller's thread)."""
        require_torchvision(model_dir)
        try:
            from vllm import SamplingParams
            from vllm.engine.arg_utils import AsyncEngineArgs
        except ImportError as exc:
            raise BackendError(f"backend 'vllm' is unavailable ({exc}); it needs vllm: pip install -e .[serve]") from None

        cfg = read_native_config(model_dir)
        if cfg.base != ".":
            raise BackendError(f"{model_dir}: vLLM serves an exported native model; run `emoreason export --model "
                               f"{model_dir} --out DIR` first (it merges every LoRA)")
        self.cfg = cfg
        from emoreason.native.model import media_settings

        self._sampling_params = SamplingParams
        self.processor = NativeProcessor.from_pretrained(model_dir, media_settings(cfg))
        self.conversation = NativeConversation(self.processor, cfg.system_prompt, cfg.max_length)
        self.modalities = list(cfg.modalities or self.processor.arch.modalities)
        self.model_name = model_name or default_model_name(model_dir)
        self.max_batch_size = max_batch_size
        args = AsyncEngineArgs(model=str(model_dir), **native_engine_args(cfg, self.processor, device, max_batch_size))
        self.runtime = VLLMRuntime.from_engine_args(args, name="emo-native")
        stage = MediaStageConfig() if media_stage is None else media_stage
        # Built once vLLM runs, so its engine process starts with none of the pool's threads or processes.
        try:
            self._media_pool = DecodePool(_no_worker_state, stage.workers, stage.pool, stage.retries) if stage.workers else None
        except BaseException:
            self.runtime.close()  # vLLM's engine process holds its memory until closed
            raise

    def check_prompt(self, request: GenerationRequest) -> None:
        check_request(request)
        self.conversation.encode(request.messages, {}, generation_prompt=True)

    def _media(self, request: GenerationRequest) -> tuple[dict, dict[str, str]]:
        """vllm_media of the request's files, in the decode pool when there is one (serving's DecodePool, as for the
        hf backend; a worker process that dies is replaced and the decode retried, then MediaStageError)."""
        files = media_files(request)
        args = (files, self.modalities, self.cfg.frames, self.cfg.audio.max_seconds)
        if self._media_pool is None:
            return vllm_media(*args)
        return self._media_pool.run(_vllm_media_in_worker, *args, what=", ".join(str(p) for p in files.values()))

    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        self.check_prompt(request)
        start = time.perf_counter()
        data, absent = self._media(request)
        prompt = self.conversation.prompt_text(request.messages, list(data))
        return PreparedRequest(request, {"prompt": prompt, "multi_modal_data": data}, data, absent, time.perf_counter() - start)

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        return self.generate_prepared(prepare_all(self.prepare, requests, self._media_pool is not None, self.max_batch_size))

    def _params(self, request: GenerationRequest):
        # detokenize off: the text is ours (_complete), as the hf backend decodes it.
        if request.temperature == 0:
            return self._sampling_params(max_tokens=request.max_tokens, temperature=0.0, detokenize=False)
        return self._sampling_params(max_tokens=request.max_tokens, temperature=request.temperature, top_p=request.top_p,
                                     seed=request.seed, detokenize=False)

    def _decode(self, tokens: list[int]) -> str:
        return self.processor.tokenizer.decode(tokens, skip_special_tokens=True)

    async def _complete(self, prepared: PreparedRequest) -> Completion:
        start = time.perf_counter()
        final = await self.runtime.final_output(prepared.encoded, self._params(prepared.request))
        choice = final.outputs[0]
        return Completion(self._decode(list(choice.token_ids)), len(final.prompt_token_ids), len(choice.token_ids),
                          "length" if choice.finish_reason == "length" else "stop", prepared.media_seconds,
                          time.perf_counter() - start)

    def generate_prepared(self, prepared: list[PreparedRequest]) -> list[Completion]:
        return self.runtime.call_all([self._complete(p) for p in prepared])

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Text deltas of one completion. Media and request errors raise here, before any text."""
        prepared = self.prepare(request)
        return self.runtime.stream(prepared.encoded, self._params(request), self._decode)

    def close(self) -> None:
        """Stop vLLM's engine process, its event loop thread and the decode pool (also run at interpreter exit)."""
        try:
            self.runtime.close()
        finally:
            if self._media_pool is not None:
                self._media_pool.close()
