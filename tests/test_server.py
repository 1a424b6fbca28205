"""The OpenAI-compatible server, live under uvicorn, driven by the real openai client and schemathesis."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from emoreason.serving.server import ServerSettings, create_app
from serving_helpers import FakeEngine, running_server

pytestmark = pytest.mark.timeout(120)

API_KEY = "sk-test-key"
MAX_MEDIA_SECONDS = 5.0
MAX_BODY_BYTES = 512 * 1024


@pytest.fixture(scope="module")
def media_root(media_dir: Path, tmp_path_factory) -> Path:
    """The server's media root: real and broken clips, a clip too long, and a symlink escaping the root."""
    from emoreason.data_prep.synthetic import write_clip

    root = tmp_path_factory.mktemp("served")
    for name in ("h264_aac.mp4", "no_audio.mp4", "empty.mp4", "not_media.mp4", "still.png", "stereo_44k.wav", "bomb.png", "audio_only.mp4"):
        shutil.copy(media_dir / name, root / name)
    shutil.copy(media_dir / "h264_aac.mp4", root / "bad.mp4")  # the fake engine refuses any bad.mp4
    frames = np.zeros((int(12 * MAX_MEDIA_SECONDS) + 24, 32, 32, 3), np.uint8)
    write_clip(root / "long.mp4", frames, None, fps=12)  # 7 s > the 5 s limit
    (root / "sub").mkdir()
    (root / "folder.mp4").mkdir()
    shutil.copy(media_dir / "h264_aac.mp4", root / "sub" / "clip.mp4")
    os.symlink(media_dir / "h264_aac.mp4", root / "escape.mp4")  # inside the root by name, outside by target
    return root


@pytest.fixture(scope="module")
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture(scope="module")
def base_url(engine: FakeEngine, media_root: Path):
    settings = ServerSettings(
        media_root=media_root, max_body_bytes=MAX_BODY_BYTES, max_media_seconds=MAX_MEDIA_SECONDS, max_tokens_limit=256
    )
    with running_server(create_app(engine, settings)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=30)


def data_url(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def user(text: str, *parts: dict) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}, *parts]}


def video(url: str) -> dict:
    return {"type": "video_url", "video_url": {"url": url}}


def test_health_and_models(base_url: str, client: openai.OpenAI):
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
    assert [m.id for m in client.models.list().data] == ["fake-emotion"]


def test_completion(client: openai.OpenAI, engine: FakeEngine):
    reply = client.chat.completions.create(
        model="fake-emotion",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How does she feel?"}],
        max_tokens=16,
        temperature=0.7,
        top_p=0.9,
        seed=3,
    )
    assert reply.choices[0].message.content == "happy media=none turns=1 last=How does she feel?"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.id.startswith("chatcmpl-") and reply.model == "fake-emotion" and abs(reply.created - time.time()) < 60
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (2, 7, 9)  # 2 messages in, 7 words out
    request = engine.requests[-1]
    assert (request.max_tokens, request.temperature, request.top_p, request.seed) == (16, 0.7, 0.9, 3)


def test_streaming(base_url: str, client: openai.OpenAI):
    messages = [{"role": "user", "content": "Why?"}]
    deltas = [c.choices[0].delta.content for c in client.chat.completions.create(model="fake-emotion", messages=messages, stream=True)]
    text = "".join(d for d in deltas if d)
    assert text == "happy media=none turns=1 last=Why?"
    assert len([d for d in deltas if d]) == 4  # streamed word by word, not in one piece

    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json={"messages": messages, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_two_turn_conversation(client: openai.OpenAI, engine: FakeEngine):
    first = client.chat.completions.create(model="fake-emotion", messages=[{"role": "user", "content": "Describe her."}])
    history = [
        {"role": "user", "content": "Describe her."},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And now?"},
    ]
    second = client.chat.completions.create(model="fake-emotion", messages=history)
    assert second.choices[0].message.content == "happy media=none turns=2 last=And now?"
    assert [m["role"] for m in engine.requests[-1].messages] == ["user", "assistant", "user"]


def test_media_as_data_urls_and_paths(client: openai.OpenAI, engine: FakeEngine, media_root: Path):
    wav = media_root / "stereo_44k.wav"
    message = user(
        "What emotion?",
        video(data_url(media_root / "h264_aac.mp4", "video/mp4")),
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav.read_bytes()).decode(), "format": "wav"}},
        {"type": "image_url", "image_url": {"url": data_url(media_root / "still.png", "image/png"), "detail": "auto"}},
        video("sub/clip.mp4"),
        {"type": "audio_url", "audio_url": {"url": "stereo_44k.wav"}},
    )
    reply = client.chat.completions.create(model="fake-emotion", messages=[message])
    assert reply.choices[0].message.content == "happy media=video,audio,image,video,audio turns=1 last=What emotion?"
    media = engine.requests[-1].media
    assert media[3].path == (media_root / "sub" / "clip.mp4").resolve()
    assert media[4].path == wav.resolve()
    # Decoded data URLs live only as long as their request.
    assert not any(m.path.exists() for m in media[:3])

    # Media stays in the conversation: a later turn still carries the first turn's clip.
    history = [message, {"role": "assistant", "content": "happy"}, {"role": "user", "content": "Why?"}]
    reply = client.chat.completions.create(model="fake-emotion", messages=history, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in reply).startswith("happy media=video,audio,image,video,audio turns=2")


BAD_REQUESTS = {
    # name: (request body, status, error code)
    "unsupported MIME type": (user("x", {"type": "image_url", "image_url": {"url": "data:application/pdf;base64,JVBERi0="}}), 415, "unsupported_media_type"),
    "text file named .mp4": (user("x", video("not_media.mp4")), 415, "not_media"),
    "undecodable (engine MediaError)": (user("x", video("bad.mp4")), 422, "unreadable"),
    "zero-length file": (user("x", video("empty.mp4")), 422, "empty"),
    "audio part without audio": (user("x", {"type": "audio_url", "audio_url": {"url": "no_audio.mp4"}}), 422, "no_audio"),
    "missing file": (user("x", video("nope.mp4")), 400, "missing_file"),
    "'..' path": (user("x", video("../h264_aac.mp4")), 403, "path_outside_media_root"),
    "'..' inside a path": (user("x", video("sub/../../h264_aac.mp4")), 403, "path_outside_media_root"),
    "absolute path": (user("x", video("/etc/passwd")), 403, "path_outside_media_root"),
    "symlink escaping the root": (user("x", video("escape.mp4")), 403, "path_outside_media_root"),
    "remote URL": (user("x", video("http://example.com/a.mp4")), 400, "unsupported_url"),
    "file URL": (user("x", video("file:///etc/passwd")), 400, "unsupported_url"),
    "clip over the duration limit": (user("x", video("long.mp4")), 413, "too_long"),
    "invalid base64": (user("x", video("data:video/mp4;base64,@@@")), 400, "invalid_base64"),
    "data URL not base64": (user("x", video("data:video/mp4,rawbytes")), 400, "invalid_data_url"),
    "media in an assistant turn": ({"role": "assistant", "content": [video("sub/clip.mp4")]}, 400, "media_not_in_user_turn"),
    "unknown part type": (user("x", {"type": "file", "file": {}}), 400, "invalid_request"),
    "decompression bomb image": (user("x", {"type": "image_url", "image_url": {"url": "bomb.png"}}), 413, "too_large"),
    "a folder named like a clip": (user("x", video("folder.mp4")), 400, "not_a_file"),
    "audio-only mp4 as video": (user("x", video("audio_only.mp4")), 422, "no_video"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_media_gets_4xx_json(base_url: str, media_root: Path, name: str, stream: bool):
    message, status, code = BAD_REQUESTS[name]
    response = httpx.post(f"{base_url}/v1/chat/completions", json={"messages": [message], "stream": stream}, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["type"] == "invalid_request_error" and error["message"]
    assert str(media_root) not in error["message"] and "Traceback" not in response.text  # no server paths leak


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 257}, 400, "max_tokens_too_large"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "invalid_request"),
        ({"messages": [{"role": "user", "content": "x"}], "model": "gpt-4"}, 404, "model_not_found"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, 400, "invalid_request"),
        ({"messages": []}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        ([1, 2], 400, "invalid_request"),
        ({"messages": [{"role": "user", "content": "<video><video>"}]}, 400, "invalid_request"),
        ({"messages": [{"role": "user", "content": "<video><video>"}], "stream": True}, 400, "invalid_request"),
    ],
    ids=[
        "max_tokens over limit",
        "max_tokens zero",
        "unknown model",
        "unsupported field",
        "no messages",
        "empty object",
        "not an object",
        "engine refuses the prompt",
        "engine refuses the prompt, streaming",
    ],
)
def test_invalid_requests_get_4xx(base_url: str, body, status: int, code: str):
    response = httpx.post(f"{base_url}/v1/chat/completions", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_decompression_bomb_data_url_is_413(base_url: str, media_root: Path, engine: FakeEngine):
    """A 48 KB PNG that decodes to 400 megapixels: refused from its header, never handed to the engine."""
    seen = len(engine.requests)
    part = {"type": "image_url", "image_url": {"url": data_url(media_root / "bomb.png", "image/png")}}
    response = httpx.post(f"{base_url}/v1/chat/completions", json={"messages": [user("x", part)]}, timeout=30)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large" and "data URL #1" in response.json()["error"]["message"]
    assert len(engine.requests) == seen


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", "10"), ("stream", "yes"), ("stream", 1), ("temperature", "0.5"), ("seed", True), ("max_tokens", 10.0)],
)
def test_request_fields_are_not_coerced(base_url: str, field: str, value):
    response = httpx.post(f"{base_url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], field: value})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field


@pytest.mark.parametrize(
    ("message", "param", "expected"),
    [
        ({"role": "user", "content": video("sub/clip.mp4")}, "messages.0.content", "expected a string or a list of parts"),
        ({"role": "user", "content": [{"type": "video_url", "url": "sub/clip.mp4"}]}, "messages.0.content.0.video_url", '"video_url": {"url": "..."}'),
        ({"role": "user", "content": "x", "video_url": {"url": "sub/clip.mp4"}}, "messages.0.video_url", "media goes in the message's content list"),
        ({"role": "user", "content": ["x", video("sub/clip.mp4")]}, "messages.0.content.0", '{"type": "text", "text": "..."}'),
    ],
    ids=["part instead of a list", "url outside its object", "part beside content", "bare string in the list"],
)
def test_misplaced_media_parts_say_what_is_expected_where(base_url: str, message: dict, param: str, expected: str):
    response = httpx.post(f"{base_url}/v1/chat/completions", json={"messages": [message]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and expected in error["message"], error
    assert "Input should be a valid string" not in error["message"]


def test_prompt_over_the_context_is_refused_before_any_media_work(media_root: Path):
    """An engine that checks prompts (LiveMediaEngine.check_prompt) is asked before the media is touched."""
    from emoreason.model.processor import PromptTooLong

    class ContextEngine(FakeEngine):
        def check_prompt(self, request):
            if sum(len(m["content"]) for m in request.messages) > 1000:
                raise PromptTooLong("conversation is at least 2000 tokens of text, over max_length=512")

    engine = ContextEngine()
    with running_server(create_app(engine, ServerSettings(media_root=media_root))) as url:
        # The clip does not exist: a media check would answer missing_file.
        body = {"messages": [user("x" * 2000, video("nope.mp4"))]}
        response = httpx.post(f"{url}/v1/chat/completions", json=body)
        assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded", response.text
        assert not engine.requests
        response = httpx.post(f"{url}/v1/chat/completions", json={"messages": [user("x", video("nope.mp4"))]})
        assert response.json()["error"]["code"] == "missing_file"


def test_malformed_json_and_oversized_body(base_url: str):
    url = f"{base_url}/v1/chat/completions"
    response = httpx.post(url, content=b'{"messages": [', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"

    big = json.dumps({"messages": [{"role": "user", "content": "x" * (MAX_BODY_BYTES + 1)}]}).encode()
    response = httpx.post(url, content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"

    # Without a Content-Length (chunked upload) the limit is enforced on what arrives.
    response = httpx.post(url, content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_api_key(engine: FakeEngine):
    with running_server(create_app(engine, ServerSettings(api_key=API_KEY))) as url:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
            response = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        assert httpx.get(f"{url}/health").status_code == 200  # probes need no key

        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        keyed = openai.OpenAI(base_url=f"{url}/v1", api_key=API_KEY, max_retries=0)
        assert keyed.chat.completions.create(model="fake-emotion", messages=body["messages"]).choices[0].message.content


def test_data_urls_without_media_root(engine: FakeEngine, media_dir: Path):
    with running_server(create_app(engine, ServerSettings())) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        message = user("x", video(data_url(media_dir / "h264_aac.mp4", "video/mp4")))
        assert "media=video" in client.chat.completions.create(model="fake-emotion", messages=[message]).choices[0].message.content
        response = httpx.post(f"{url}/v1/chat/completions", json={"messages": [user("x", video("h264_aac.mp4"))]})
        assert response.status_code == 403 and response.json()["error"]["code"] == "media_root_disabled"


def test_engine_crash_is_a_500_without_traceback(caplog):
    class CrashingEngine(FakeEngine):
        def reply(self, request):
            raise RuntimeError("secret internal detail")

    with running_server(create_app(CrashingEngine(), ServerSettings())) as url:
        for stream in (False, True):
            response = httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "stream": stream})
            assert response.status_code == 500
            assert response.json()["error"]["code"] == "engine_error" and "secret" not in response.text
    assert "secret internal detail" in caplog.text  # the log keeps what the client is not told



def test_client_hanging_up_stops_the_stream():
    produced: list[int] = []
    closed = threading.Event()

    class EndlessEngine(FakeEngine):
        def stream(self, request):
            try:
                for i in range(1000):
                    time.sleep(0.01)
                    produced.append(i)
                    yield f" w{i}"
            finally:
                closed.set()

    with running_server(create_app(EndlessEngine(), ServerSettings())) as url:
        body = {"messages": [{"role": "user", "content": "x"}], "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            lines = response.iter_lines()
            assert [next(lines) for _ in range(3)][-1].startswith("data: ")
        assert closed.wait(5)  # the engine's generator was closed, not left running to its end
    assert len(produced) < 1000


def test_concurrent_requests_all_succeed(base_url: str, engine: FakeEngine, media_root: Path):
    """20 requests at once, streamed and not, while the engine takes 50 ms each, one at a time."""
    clip = data_url(media_root / "h264_aac.mp4", "video/mp4")

    async def one(client: openai.AsyncOpenAI, i: int) -> str:
        messages = [user(f"clip {i}", video(clip if i % 2 else "sub/clip.mp4"))]
        if i % 3 == 0:
            chunks = await client.chat.completions.create(model="fake-emotion", messages=messages, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in chunks])
        reply = await client.chat.completions.create(model="fake-emotion", messages=messages)
        return reply.choices[0].message.content

    async def health_latency(http: httpx.AsyncClient) -> float:
        await asyncio.sleep(0.2)  # while the engine works through the queue
        start = time.perf_counter()
        assert (await http.get(f"{base_url}/health")).status_code == 200
        return time.perf_counter() - start

    async def run() -> tuple[list[str], float]:
        client = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60)
        async with httpx.AsyncClient() as http:
            *texts, latency = await asyncio.gather(*(one(client, i) for i in range(20)), health_latency(http))
        await client.close()
        return texts, latency

    engine.delay = 0.05
    try:
        texts, latency = asyncio.run(run())
    finally:
        engine.delay = 0.0
    assert texts == [f"happy media=video turns=1 last=clip {i}" for i in range(20)]
    assert latency < 0.5  # the event loop answered while 20 x 50 ms of engine work was queued


def test_fuzz_openapi_finds_no_server_error(base_url: str):
    """schemathesis generates valid and invalid requests from /openapi.json; none may get a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    def served_model(case):
        # Random model ids all get a 404; naming the served model lets valid bodies reach the engine.
        if isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = "fake-emotion"
        return case

    # The documented shapes hold for a stream (each event against the event schema) and an error, not just by chance.
    operation = schema["/v1/chat/completions"]["POST"]
    for body in ({"messages": [{"role": "user", "content": "hi"}], "stream": True}, {"messages": [user("x", video("nope.mp4"))]}):
        operation.Case(body=body, media_type="application/json").call_and_validate(base_url=base_url, checks=checks, timeout=10)

    positive = schema.as_strategy(schemathesis.GenerationMode.POSITIVE).map(served_model)
    negative = schema.as_strategy(schemathesis.GenerationMode.NEGATIVE)
    fuzz = settings(
        max_examples=50, deadline=None, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
    )
    started = time.monotonic()
    for strategy in (positive, negative):

        @fuzz
        @given(case=strategy)
        def call(case) -> None:
            case.call_and_validate(base_url=base_url, checks=checks, timeout=10)

        call()
    assert time.monotonic() - started < 60



def test_serve_cli(monkeypatch, tmp_path: Path, media_root: Path, capsys):
    """`emoreason serve` builds the settings from its flags and hands the app to uvicorn on 127.0.0.1."""
    import uvicorn

    from emoreason.serving import serve_cli

    runs = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: runs.append((app, kwargs)))
    monkeypatch.setattr(serve_cli, "load_engine", lambda backend, model_dir, **kwargs: FakeEngine())
    monkeypatch.setenv("EMOREASON_API_KEY", "from-env")
    argv = ["--model", str(tmp_path), "--media-root", str(media_root), "--max-body-mb", "1", "--port", "8123"]
    assert serve_cli.main(argv) == 0
    (app, kwargs), = runs
    assert (kwargs["host"], kwargs["port"]) == ("127.0.0.1", 8123)
    with running_server(app) as url:
        assert httpx.get(f"{url}/v1/models").status_code == 401
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer from-env"}).json()
        assert models["data"][0]["id"] == "fake-emotion"

    assert serve_cli.main(["--model", str(tmp_path / "missing")]) == 2
    assert serve_cli.main(["--model", str(tmp_path), "--media-root", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_serve_cli_unavailable_backend(monkeypatch, tmp_path: Path, capsys):
    from emoreason import model_kinds
    from emoreason.serving import serve_cli

    monkeypatch.setitem(model_kinds.KINDS["projector"].engines, "vllm", "emoreason.serving.no_such_engine:VLLMEngine")
    assert serve_cli.main(["--model", str(tmp_path), "--backend", "vllm"]) == 2
    assert "backend 'vllm' is unavailable" in capsys.readouterr().err
