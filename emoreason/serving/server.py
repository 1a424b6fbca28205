"""The OpenAI-compatible HTTP server: POST /v1/chat/completions, GET /v1/models, GET /health.

Every refusal is a 4xx with OpenAI's {"error": {"message", "type", "code"}} body; a 500 means a bug
in the server or the engine, and its body never carries a stack trace (the log does). The engine
blocks, so it runs in the thread pool and the event loop keeps answering other requests meanwhile.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from emoreason.config import check
from emoreason.media.errors import MediaError
from emoreason.media.image import MAX_IMAGE_PIXELS
from emoreason.model.processor import PromptTooLong
from emoreason.serving.api_errors import APIError, hide_paths, media_api_error
from emoreason.serving.body_limit import BodyLimitMiddleware
from emoreason.serving.engine import GenerationRequest, InferenceEngine
from emoreason.serving.media_input import RequestMedia, resolve_media
from emoreason.serving.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ErrorResponse,
    ModelCard,
    ModelList,
    PART_SHAPES,
    TextPart,
)

log = logging.getLogger(__name__)

# Documented on the chat route so /openapi.json (and the fuzz test reading it) knows every status.
_ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 415, 422, 500)}
# Before OpenAPI 3.2's itemSchema, an event stream's `schema` describes one event (schemathesis reads it so).
_SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "description": "A ChatCompletionChunk as JSON; an ErrorResponse if the engine fails mid-stream; [DONE] last.",
            "anyOf": [
                {"const": "[DONE]"},
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"anyOf": [{"$ref": "#/components/schemas/ChatCompletionChunk"}, {"$ref": "#/components/schemas/ErrorResponse"}]},
                },
            ],
        }
    },
}


@dataclasses.dataclass
class ServerSettings:
    media_root: Path | None = None
    """Folder that path URLs are relative to and confined in; None accepts data URLs only."""
    api_key: str | None = None
    """When set, /v1/* requires `Authorization: Bearer <api_key>`; /health stays open for probes."""
    max_body_bytes: int = 64 * 2**20
    """Request body limit; it also bounds base64 media (4/3 of the file size)."""
    max_media_seconds: float | None = 600.0
    """Longest audio or video clip accepted; None disables the check."""
    max_image_pixels: int | None = MAX_IMAGE_PIXELS
    """Largest image accepted (width x height, read from its header before decoding); None: Pillow's own limit only."""
    max_tokens_limit: int = 2048
    """Largest max_tokens a request may ask for."""
    model_name: str | None = None
    """The id clients see in /v1/models; None uses the engine's model_name."""

    def __post_init__(self) -> None:
        check(self.max_body_bytes > 0, "max_body_bytes", "a positive integer", self.max_body_bytes)
        check(self.max_media_seconds is None or self.max_media_seconds > 0, "max_media_seconds", "null or positive", self.max_media_seconds)
        check(self.max_image_pixels is None or self.max_image_pixels > 0, "max_image_pixels", "null or positive", self.max_image_pixels)
        check(self.max_tokens_limit > 0, "max_tokens_limit", "a positive integer", self.max_tokens_limit)
        check(self.api_key is None or len(self.api_key) > 0, "api_key", "null or a non-empty string", self.api_key)


def create_app(engine: InferenceEngine, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    model_name = settings.model_name or engine.model_name
    started = int(time.time())
    app = FastAPI(title="emoreason", description="OpenAI-compatible multimodal emotion LM API", version="1")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    _add_error_handlers(app)
    bearer = HTTPBearer(auto_error=False)

    def authorize(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        # compare_digest: the time taken must not reveal how much of a guessed key was right.
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), settings.api_key.encode()):
            raise APIError(401, "missing or incorrect API key (Authorization: Bearer <key>)", "invalid_api_key")

    # Only a keyed server declares the bearer scheme, so /openapi.json says whether a key is needed.
    auth = [Depends(authorize)] if settings.api_key is not None else []

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", response_model=ModelList, dependencies=auth, responses={401: {"model": ErrorResponse}})
    def models() -> ModelList:
        return ModelList(data=[ModelCard(id=model_name, created=started)])

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        dependencies=auth,
        responses={200: {"content": {"text/event-stream": {"schema": _SSE_EVENT}}}, **_ERRORS},
    )
    async def chat_completions(body: ChatCompletionRequest):
        if body.model is not None and body.model != model_name:
            raise APIError(404, f"model {body.model[:100]!r} is not served here; GET /v1/models lists {model_name!r}", "model_not_found", "model")
        media = RequestMedia()
        try:
            request = await run_in_threadpool(_to_generation_request, body, settings, media, engine)
            if body.stream:
                return await _stream_response(engine, request, media, model_name)  # the stream closes `media`
            (completion,) = await run_in_threadpool(_generate, engine, request, media)
        except BaseException:
            media.close()
            raise
        media.close()
        return ChatCompletion.model_validate(
            {
                "id": _completion_id(),
                "created": int(time.time()),
                "model": model_name,
                "choices": [{"index": 0, "message": {"content": completion.text}, "finish_reason": completion.finish_reason}],
                "usage": {
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "total_tokens": completion.prompt_tokens + completion.completion_tokens,
                },
            }
        )

    _document_stream_chunks(app)
    return app


def _document_stream_chunks(app: FastAPI) -> None:
    """Add ChatCompletionChunk to /openapi.json: only the stream's event schema refers to it, so FastAPI would leave it out."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            chunk = ChatCompletionChunk.model_json_schema(ref_template="#/components/schemas/{model}")
            schema["components"]["schemas"].update({**chunk.pop("$defs", {}), "ChatCompletionChunk": chunk})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _to_generation_request(
    body: ChatCompletionRequest, settings: ServerSettings, media: RequestMedia, engine: InferenceEngine
) -> GenerationRequest:
    # Unset: the engine interface's default (GenerationRequest.max_tokens), within this server's limit.
    max_tokens = body.max_completion_tokens or body.max_tokens or min(GenerationRequest.max_tokens, settings.max_tokens_limit)
    if max_tokens > settings.max_tokens_limit:
        raise APIError(400, f"max_tokens={max_tokens} is over this server's limit of {settings.max_tokens_limit}", "max_tokens_too_large", "max_tokens")
    messages, parts = [], []
    for i, message in enumerate(body.messages):
        if isinstance(message.content, str):
            messages.append({"role": message.role, "content": message.content})
            continue
        texts = [p.text for p in message.content if isinstance(p, TextPart)]
        media_parts = [p for p in message.content if not isinstance(p, TextPart)]
        if media_parts and message.role != "user":
            raise APIError(400, f"messages[{i}]: media parts are accepted in user messages only", "media_not_in_user_turn", f"messages.{i}.content")
        messages.append({"role": message.role, "content": "\n".join(texts)})
        parts.extend(media_parts)
    request = GenerationRequest(
        messages=messages,
        max_tokens=max_tokens,
        temperature=body.temperature or 0.0,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        landmarks=body.landmarks,
    )
    # A request refused on its text alone (too long for the context, a bad field) costs no media work.
    check_prompt = getattr(engine, "check_prompt", None)
    if check_prompt is not None:
        try:
            check_prompt(request)
        except ValueError as exc:
            raise _engine_error(exc, media) from None
    try:
        resolve_media(parts, settings.media_root, settings.max_media_seconds, settings.max_image_pixels, media)
    except MediaError as exc:
        raise media_api_error(exc, media.names) from None
    request.media = media.inputs
    return request


def _generate(engine: InferenceEngine, request: GenerationRequest, media: RequestMedia):
    try:
        return engine.generate([request])
    except Exception as exc:
        raise _engine_error(exc, media) from None


def _engine_error(exc: Exception, media: RequestMedia) -> APIError:
    """What the client is told about an engine failure.

    Engines raise MediaError for unusable media and ValueError for a request they cannot honour
    (a conversation over the context length, placeholder text in the wrong turn): both are the
    client's to fix. Anything else is a bug, logged here and reported without its details.
    """
    if isinstance(exc, MediaError):
        return media_api_error(exc, media.names)
    if isinstance(exc, PromptTooLong):
        return APIError(400, str(exc)[:1000], "context_length_exceeded", "messages")
    if isinstance(exc, ValueError):
        return APIError(400, hide_paths(str(exc)[:1000], media.names), "invalid_request")
    log.error("engine failed on a request", exc_info=exc)
    return APIError(500, "the engine failed on this request; see the server log", "engine_error")


async def _stream_response(engine: InferenceEngine, request: GenerationRequest, media: RequestMedia, model_name: str) -> StreamingResponse:
    """Start the stream and wait for its first delta, so errors before any text still get their status."""
    deltas = await run_in_threadpool(_start_stream, engine, request, media)
    chunks = iterate_in_threadpool(deltas)
    try:
        first: str | None = await chunks.__anext__()
    except StopAsyncIteration:
        first = None
    head = {"id": _completion_id(), "created": int(time.time()), "model": model_name}

    def event(delta: dict, finish_reason: str | None = None) -> str:
        chunk = ChatCompletionChunk.model_validate({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

    async def events() -> AsyncIterator[str]:
        try:
            yield event({"role": "assistant", "content": ""})
            if first is not None:
                yield event({"content": first})
                async for text in chunks:
                    yield event({"content": text})
            # The stream interface carries no finish reason; "stop" is what OpenAI clients expect at the end.
            yield event({}, "stop")
        except APIError as exc:
            # Headers are sent; an error event is all a client can still be told (vLLM does the same).
            yield f"data: {json.dumps(exc.body())}\n\n"
        finally:
            # Shielded: a client that hung up cancels this task, and must not leave the engine generating.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(deltas.close)
            media.close()
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _start_stream(engine: InferenceEngine, request: GenerationRequest, media: RequestMedia) -> Generator[str, None, None]:
    try:
        return _guarded(engine.stream(request), media)
    except Exception as exc:
        raise _engine_error(exc, media) from None


def _guarded(deltas: Iterator[str], media: RequestMedia) -> Generator[str, None, None]:
    """The engine's deltas, with any failure turned into the APIError the client gets."""
    try:
        yield from deltas
    except Exception as exc:
        raise _engine_error(exc, media) from None
    finally:
        close = getattr(deltas, "close", None)
        if close is not None:
            close()


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # OpenAI answers schema violations with 400; FastAPI's default 422 body is not OpenAI-shaped.
        error = _validation_error(list(exc.errors()))
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}  # FastAPI raises 400 for bodies that are not UTF-8
        error = APIError(exc.status_code, str(exc.detail), codes.get(exc.status_code, "http_error"))
        return JSONResponse(error.body(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def server_bug(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse(APIError(500, "internal server error; see the server log", "internal_error").body(), status_code=500)


def _validation_error(errors: list[dict]) -> APIError:
    """The most telling pydantic error as an APIError naming the field (`messages.0.content.1.video_url`)."""
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return APIError(400, f"malformed JSON body: {detail}", "invalid_json")
    located = [(_field_path(e.get("loc", ())[1:]), e) for e in errors]  # loc starts with "body"
    if not located or not located[0][0]:
        return APIError(400, "the request body must be a JSON object (Content-Type: application/json)", "invalid_request")
    # `content` is a string or a list of parts: a list that went wrong inside says more than "not a string".
    inner = [(path, e) for path, e in located if not _is_content_branch(e, "str")]
    path, error = (inner or located)[0]
    where = ".".join(str(part) for part in path)
    msg = error.get("msg", "invalid value")
    if path[-1:] == ["content"] and error.get("type") == "list_type":
        msg = f"expected a string or a list of parts, got {_json_kind(error.get('input'))}"
    return APIError(400, f"{where}: {msg}{_expected(path, error)}", "invalid_request", where)


def _is_content_branch(error: dict, branch: str) -> bool:
    loc = error.get("loc", ())
    return any(loc[i] == "content" and loc[i + 1] == branch for i in range(len(loc) - 1))


def _field_path(loc) -> list:
    """A pydantic loc without its union-branch labels: (..., 'content', 'list[...]', 0, 'video_url', 'url') -> (..., 'content', 0, 'url')."""
    path, skip_tag = [], False
    for i, part in enumerate(loc):
        if i and loc[i - 1] == "content" and isinstance(part, str) and (part == "str" or part.startswith("list[")):
            continue
        if skip_tag and part in PART_SHAPES:
            skip_tag = False
            continue  # the discriminator's own label
        skip_tag = isinstance(part, int) and len(path) >= 1 and path[-1] == "content"
        path.append(part)
    return path


def _expected(path: list, error: dict) -> str:
    """What belongs at `path`, for errors about media parts put in the wrong place or shape."""
    parts = "; a part is " + " or ".join(PART_SHAPES.values())
    if path[-1:] == ["content"]:
        return parts
    if len(path) >= 4 and path[2] == "content" and isinstance(path[3], int):
        # The part's kind: the field that went wrong (`video_url`), else the part's own "type".
        given = error.get("input")
        kind = path[4] if len(path) > 4 and path[4] in PART_SHAPES else given.get("type") if isinstance(given, dict) else None
        return f"; expected {PART_SHAPES[kind]}" if kind in PART_SHAPES else parts
    if len(path) == 3 and path[0] == "messages" and path[2] in PART_SHAPES:
        return f"; media goes in the message's content list: {{\"role\": \"user\", \"content\": [{PART_SHAPES['text']}, {PART_SHAPES[path[2]]}]}}"
    return ""


def _json_kind(value) -> str:
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), "another value")
