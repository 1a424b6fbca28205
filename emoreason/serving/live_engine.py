"""What both backends share: live media -> prompt preparation, eos ids, and token ids -> Completion."""

from __future__ import annotations

import threading
from pathlib import Path

from emoreason.features.featurizer import Featurizer
from emoreason.model.config import ModelConfig
from emoreason.model.processor import EmotionProcessor
from emoreason.serving.engine import Completion, GenerationRequest, default_model_name
from emoreason.serving.engine import PreparedRequest
from emoreason.serving.media_stage import MediaStage, MediaStageConfig
from emoreason.serving.requests import check_request, prepare_all, prepare_request


def eos_token_ids(processor: EmotionProcessor, configured) -> list[int]:
    """The tokenizer's eos plus the checkpoint's generation_config eos ids.

    Chat models often end turns with a token the tokenizer does not call eos (Qwen: <|im_end|> and
    <|endoftext|>); the checkpoint's generation_config lists them all.
    """
    ids = {processor.tokenizer.eos_token_id}
    ids |= set(configured) if isinstance(configured, list) else {configured}
    return sorted(i for i in ids if i is not None)


class LiveMediaEngine:
    """Base of HFEngine and VLLMEngine: the BatchInferenceEngine half that is not generation."""

    processor: EmotionProcessor
    eos_ids: list[int]

    def _init_common(self, config: ModelConfig, model_dir: str | Path, max_batch_size: int, model_name: str | None,
                     tuned: dict | None = None, media_stage: MediaStageConfig | None = None) -> None:
        """tuned: the model's LoRA-tuned encoders (EmotionLM.tuned_encoders), which the Featurizer must run;
        media_stage: how requests' media is prepared concurrently (default MediaStageConfig(); workers=0: one
        request at a time behind the media lock)."""
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size: expected an integer >= 1, got {max_batch_size}")
        from emoreason.model.loading import trained_encoder_modalities

        self.modalities = config.modalities
        self.trained_encoder_modalities = [m for m in trained_encoder_modalities(config, model_dir) if m in self.modalities]
        """Computed from the media even when a caller has the rest from the prep cache (prepare's `cached`)."""
        self.featurizer = Featurizer(config.encoders, config.media, tuned=tuned)
        # Every encoder and the face detector load now: a model whose encoder cannot load fails at start-up
        # (EncoderLoadError), never as a 500 on each request after /health said ok.
        self.featurizer.load_all()
        self.model_name = model_name or default_model_name(model_dir)
        self.max_batch_size = max_batch_size
        # Without a media stage the encoders and the face detector are shared: one request's media at a time.
        self._media_lock = threading.Lock()
        media_stage = MediaStageConfig() if media_stage is None else media_stage
        self.media_stage = MediaStage(self.featurizer, media_stage) if media_stage.workers > 0 else None

    def prepare(self, request: GenerationRequest, cached: dict | None = None) -> PreparedRequest:
        """Live features + prompt tokens; MediaError for unusable media, ValueError for a bad request.

        cached: the features read from the prep cache (modality -> [t, d] fp16); then only the modalities of the
        encoders the model trained (trained_encoder_modalities), which no cache holds, are computed from the media."""
        modalities = self.modalities if cached is None else self.trained_encoder_modalities
        if self.media_stage is not None:  # decodes in its pool, batches the encoders with other requests'
            return prepare_request(request, self.media_stage, self.processor, modalities, cached=cached)
        return prepare_request(request, self.featurizer, self.processor, modalities, self._media_lock, cached=cached)

    def close_media_stage(self) -> None:
        """Stop the media stage's workers (the vllm engine's close() calls it; the hf engine's threads need none)."""
        if self.media_stage is not None:
            self.media_stage.close()
            self.media_stage = None

    def check_prompt(self, request: GenerationRequest) -> None:
        """ValueError (PromptTooLong over the context length) for a request refused on its text alone.

        The server calls this before it touches the request's media.
        """
        check_request(request)
        self.processor.check_prompt_length(request.messages)

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        return self.generate_prepared(prepare_all(self.prepare, requests, self.media_stage is not None, self.max_batch_size))

    def generate_prepared(self, prepared: list[PreparedRequest]) -> list[Completion]:
        raise NotImplementedError

    def _completion(self, tokens: list[int], prepared: PreparedRequest, llm_seconds: float) -> Completion:
        """Both backends cut and decode new token ids this one way, so they give the same text."""
        tokens = tokens[: prepared.request.max_tokens]  # past its budget a batched row holds padding
        stop = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
        kept = tokens if stop is None else tokens[: stop + 1]  # the eos token counts as generated, as in vLLM
        return Completion(
            text=self.processor.tokenizer.decode(kept, skip_special_tokens=True),
            prompt_tokens=len(prepared.encoded),
            completion_tokens=len(kept),
            finish_reason="length" if stop is None else "stop",
            media_seconds=prepared.media_seconds,
            llm_seconds=llm_seconds,
        )
