"""A GenerationRequest -> the prompt tokens and live features every backend feeds its LLM.

The media goes through the model's own Featurizer (emoreason/features/featurizer.py), the one
implementation prep and training use too, so a served model sees the fp16 features it was trained
on. Its two kinds of failure map onto the two answers a server gives:

- a fault (the request's media is missing, zero-length, corrupt, not media, too long): MediaError,
  which a server answers with a 4xx;
- a plain absence (no audio track, no face, a still image for the video encoder, an empty audio
  track): that modality is left out, its placeholder dropped from the prompt, and the model answers
  from the rest. Nothing is ever filled in with zeros.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import torch

from emoreason.constants import MEDIA_KINDS
from emoreason.features.featurizer import Featurizer
from emoreason.media.errors import MediaError
from emoreason.model.processor import EmotionProcessor, EncodedConversation
from emoreason.schema import Landmarks
from emoreason.serving.engine import GenerationRequest, PreparedRequest
from emoreason.serving.media_stage import MediaStage


def media_files(request: GenerationRequest) -> dict[str, Path]:
    """kind -> path; at most one file per kind (one sample has one video, one audio, one image)."""
    files: dict[str, Path] = {}
    for item in request.media:
        if item.kind not in MEDIA_KINDS:
            raise MediaError("bad_field", item.path, f"media kind {item.kind!r}, expected one of {list(MEDIA_KINDS)}")
        if item.kind in files:
            raise MediaError("bad_field", item.path, f"more than one {item.kind} in one request")
        files[item.kind] = Path(item.path)
    return files


def request_features(featurizer: Featurizer | MediaStage, files: dict[str, Path], modalities: list[str],
                     landmarks: Landmarks | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(modality -> [t, d] fp16, modality -> absence reason); MediaError when the media is at fault.

    featurizer: the Featurizer itself, or serving's media stage, which runs its decode and encode concurrently.
    landmarks: the request's annotated landmarks (a `landmarks:annotation` encoder reads them, as in prep)."""
    result = featurizer.featurize(files, modalities, landmarks=landmarks)
    result.raise_for_fault()
    return result.features, {m: a.reason for m, a in result.absent.items()}


def check_request(request: GenerationRequest) -> None:
    """ValueError naming the first field a backend cannot honour."""
    if request.max_tokens < 1:
        raise ValueError(f"max_tokens: expected an integer >= 1, got {request.max_tokens}")
    if request.temperature < 0:
        raise ValueError(f"temperature: expected a number >= 0 (0 is greedy), got {request.temperature}")
    if not 0 < request.top_p <= 1:
        raise ValueError(f"top_p: expected a number in (0, 1], got {request.top_p}")
    if not request.messages:
        raise ValueError("messages: expected at least one chat turn")
    for i, message in enumerate(request.messages):
        valid = isinstance(message, dict) and message.get("role") in ("system", "user", "assistant")
        if not (valid and isinstance(message.get("content"), str)):
            raise ValueError(f"messages[{i}]: expected {{'role': system|user|assistant, 'content': str}}, got {message!r}")


def _encode(processor: EmotionProcessor, request: GenerationRequest, features: dict[str, torch.Tensor]) -> EncodedConversation:
    # ValueError when the conversation has nowhere to put the media or runs over max_length.
    return processor.encode(request.messages, {m: f.shape[0] for m, f in features.items()}, generation_prompt=True,
                            fields=request.prompt_fields)


def prepare_request(
    request: GenerationRequest,
    featurizer: Featurizer | MediaStage,
    processor: EmotionProcessor,
    modalities: list[str],
    media_lock: AbstractContextManager = contextlib.nullcontext(),
    cached: dict[str, torch.Tensor] | None = None,
) -> PreparedRequest:
    """Live features + prompt tokens; MediaError for unusable media, ValueError for a bad request.

    modalities: those computed from the media now; cached: features of others, already fp16 (the prep cache).

    Only the media work holds `media_lock` (the encoders and the face detector are shared): the
    request's fields and its prompt's length are checked first, and the prompt tokenized after, so
    a huge or malformed text never makes other requests wait.
    """
    check_request(request)  # before any decoding: a bad field costs no media work
    processor.check_prompt_length(request.messages)  # PromptTooLong, without tokenizing a huge text
    files = media_files(request)
    start = time.perf_counter()
    with media_lock:
        # Annotated landmarks need no file: a text-only request carrying them featurizes its landmarks alone.
        wanted = modalities if files else [m for m in modalities if m == "landmarks" and request.landmarks is not None]
        features, absent = request_features(featurizer, files, wanted, request.landmarks) if wanted else ({}, {})
    media_seconds = time.perf_counter() - start
    features = dict(cached or {}) | features
    return PreparedRequest(request, _encode(processor, request, features), features, absent, media_seconds)


def prepare_with_features(
    request: GenerationRequest,
    features: dict[str, torch.Tensor],
    processor: EmotionProcessor,
    absent: dict[str, str] | None = None,
    media_seconds: float = 0.0,
) -> PreparedRequest:
    """A request whose features were computed elsewhere (the prep cache), already fp16."""
    check_request(request)
    return PreparedRequest(request, _encode(processor, request, features), dict(features), dict(absent or {}), media_seconds)


def prepare_all(prepare: Callable[[GenerationRequest], PreparedRequest], requests: list[GenerationRequest],
                concurrent: bool, max_workers: int) -> list[PreparedRequest]:
    """Every request of a batch prepared, in order, before any LLM work (so one bad file fails the call early).

    concurrent: the engine's media runs in a pool (its media stage or decode pool); then a batch (infer's) enters
    it at once, so its decodes overlap and, in the projector model's stage, its encoders run batched."""
    if not concurrent or len(requests) == 1:
        return [prepare(r) for r in requests]
    with ThreadPoolExecutor(min(len(requests), max_workers), thread_name_prefix="prepare") as pool:
        return list(pool.map(prepare, requests))
