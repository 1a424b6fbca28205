"""One inference interface, two backends (hf: transformers generate; vllm: prompt embeddings).

A request carries chat messages plus media files; the engine runs decode -> faces -> encoders ->
projectors live, at request time, and never substitutes zeros for missing media.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from emoreason.model.processor import EmotionProcessor, EncodedConversation
    from emoreason.schema import Landmarks


# Folder names that say what a directory is, not which model: `runs/mer/export` serves as "mer".
GENERIC_MODEL_DIR_NAMES = frozenset({"export", "model", "final", "llm", "serving", "merged"})


def default_model_name(model_dir: str | Path) -> str:
    """The id clients see when none is given: the model folder's name, or its run's for a generic one."""
    path = Path(model_dir).resolve()
    if path.name.lower() in GENERIC_MODEL_DIR_NAMES and path.parent.name:
        return path.parent.name
    return path.name


@dataclasses.dataclass
class MediaInput:
    """A media file attached to a request, already resolved inside the server's media root."""

    kind: str  # "video" | "audio" | "image"
    path: Path


@dataclasses.dataclass
class GenerationRequest:
    messages: list[dict[str, str]]
    """Chat turns {role, content}; text only. Placeholders (<video>...) are optional."""
    media: list[MediaInput] = dataclasses.field(default_factory=list)
    max_tokens: int = 128
    temperature: float = 0.0
    """0 means greedy."""
    top_p: float = 1.0
    seed: int | None = None
    prompt_fields: dict[str, str | None] | None = None
    """The sample's `subtitle` and instruct `task`, for a recipe's prompt template (model.prompt); None: neither."""
    landmarks: Landmarks | None = None
    """The sample's annotated landmarks (docs/schema.md), which a `landmarks:annotation` encoder reads, as in prep."""


@dataclasses.dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    media_seconds: float = 0.0
    """Time spent decoding media and running encoders + projectors."""
    llm_seconds: float = 0.0


@dataclasses.dataclass
class PreparedRequest:
    """A request with its media turned into features and its prompt tokenized, ready for any backend."""

    request: GenerationRequest
    encoded: EncodedConversation
    """Prompt tokens ending in the assistant generation prompt (placeholders expanded)."""
    features: dict[str, torch.Tensor]
    """modality -> [t, d] fp16; only modalities the media provided."""
    absent: dict[str, str] = dataclasses.field(default_factory=dict)
    """modality -> reason it has no features (a key of emoreason.media.errors.REASONS)."""
    media_seconds: float = 0.0


@runtime_checkable
class InferenceEngine(Protocol):
    model_name: str

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        """Complete a batch of requests.

        Raises emoreason.media.errors.MediaError for unusable media and ValueError for a malformed
        request (both the client's fault); a modality the media merely lacks is left out instead.
        """
        ...

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Text deltas of one completion, as they are produced."""
        ...


@runtime_checkable
class BatchInferenceEngine(InferenceEngine, Protocol):
    """An engine whose media/prompt work is split from generation (what `emoreason infer` needs).

    Batch jobs prepare each sample on its own, so one bad clip fails alone, and may hand in features
    from the prep cache instead of media (emoreason.serving.requests.prepare_with_features).
    """

    processor: EmotionProcessor
    modalities: list[str]
    """The modalities the model has projectors for."""

    def prepare(self, request: GenerationRequest) -> PreparedRequest:
        """Live features + prompt tokens; MediaError for unusable media, ValueError for a bad conversation."""
        ...

    def generate_prepared(self, prepared: list[PreparedRequest]) -> list[Completion]:
        ...
