"""The subset of OpenAI's chat-completions API the server speaks, as pydantic models.

These models are the request validation and the OpenAPI schema at /openapi.json, so clients and
the schemathesis fuzz test see exactly what the server accepts. Unknown fields are rejected (as
OpenAI does) rather than silently ignored: `n=3` or `tools` must not look as if they worked. Types
are strict: `"max_tokens": "10"` or `"stream": "yes"` is an error, not quietly coerced.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from emoreason.schema import Landmarks

MEDIA_URL_HELP = (
    "A base64 data URL (data:video/mp4;base64,...) or a path relative to the server's media root "
    "(clips/a.mp4). Remote URLs are not fetched."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MediaURL(_Strict):
    url: str = Field(description=MEDIA_URL_HELP)


class ImageURL(MediaURL):
    detail: Literal["auto", "low", "high"] | None = Field(None, description="Accepted for OpenAI clients; ignored.")


class InputAudio(_Strict):
    data: str = Field(description="Base64-encoded audio bytes (no data: prefix).")
    format: Literal["wav", "mp3", "flac", "ogg", "m4a"]


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


class VideoPart(_Strict):
    type: Literal["video_url"]
    video_url: MediaURL


class AudioPart(_Strict):
    type: Literal["audio_url"]
    audio_url: MediaURL


class InputAudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: InputAudio


MediaPart = ImagePart | VideoPart | AudioPart | InputAudioPart
# part type -> its shape, for error messages that say what was expected where
PART_SHAPES = {
    "text": '{"type": "text", "text": "..."}',
    "image_url": '{"type": "image_url", "image_url": {"url": "..."}}',
    "video_url": '{"type": "video_url", "video_url": {"url": "..."}}',
    "audio_url": '{"type": "audio_url", "audio_url": {"url": "..."}}',
    "input_audio": '{"type": "input_audio", "input_audio": {"data": "<base64>", "format": "wav"}}',
}
ContentPart = Annotated[TextPart | MediaPart, Field(discriminator="type")]


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str | Annotated[list[ContentPart], Field(min_length=1)] = Field(
        description="Text, or a list of text and media parts. Media is accepted in user turns only."
    )


class ChatCompletionRequest(_Strict):
    model: str | None = Field(None, description="The served model's id (GET /v1/models); omit for the served model.")
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_tokens: int | None = Field(None, ge=1, description="At most the server's --max-tokens-limit.")
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for max_tokens; wins if both are set.")
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="0 or unset decodes greedily.")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stream: bool = False
    landmarks: Landmarks | None = Field(None, description=(
        "emoreason's extension (the openai client's extra_body): the clip's annotated facial landmarks, as a "
        "sample's `landmarks` field (docs/schema.md), for a model whose landmark encoder reads annotations "
        "(landmarks:annotation)."))


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed completion (`data: {...}`), the last one followed by `data: [DONE]`."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "emoreason"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape, returned with every 4xx and 5xx."""

    error: ErrorDetail
