"""VLLMRuntime, the loop thread both vLLM backends run on, with a stand-in for AsyncLLM (no vLLM start, fast):
streamed deltas hold back half a UTF-8 character and join to the whole text, an early close aborts the
request, errors reach the reader, close is idempotent. The real engines: tests/test_vllm_engine.py and
tests/test_native_integration.py."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from emoreason.serving.vllm_runtime import VLLMRuntime

TEXT = "hé, ok"  # "é" is two UTF-8 bytes: one token each, so one step ends with half a character


def decode(tokens: list[int]) -> str:
    return bytes(tokens).decode("utf-8", errors="replace")


class FakeAsyncLLM:
    """AsyncLLM's surface the runtime uses: generate yields cumulative token ids, one byte a step."""

    def __init__(self, tokens: list[int], fail_after: int | None = None, steps_before_wait: int | None = None):
        self.tokens = tokens
        self.fail_after = fail_after
        self.steps_before_wait = steps_before_wait  # then it waits forever (a long answer)
        self.aborted: list[str] = []
        self.running: set[str] = set()
        self.shutdowns = 0

    async def generate(self, engine_input, params, request_id: str):
        self.running.add(request_id)
        try:
            for n in range(1, len(self.tokens) + 1):
                if n == self.fail_after:
                    raise RuntimeError("engine core died")
                if n == self.steps_before_wait:
                    await asyncio.Event().wait()
                await asyncio.sleep(0)
                choice = SimpleNamespace(token_ids=self.tokens[:n])
                yield SimpleNamespace(outputs=[choice], finished=n == len(self.tokens), prompt_token_ids=[0])
        finally:
            self.running.discard(request_id)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    def shutdown(self) -> None:
        self.shutdowns += 1


@pytest.fixture
def runtime_on():
    made: list[VLLMRuntime] = []

    def start(engine: FakeAsyncLLM) -> VLLMRuntime:
        made.append(VLLMRuntime(lambda: engine, name="test"))
        return made[-1]

    yield start
    for runtime in made:
        runtime.close()


def test_stream_holds_back_half_a_character_and_joins_to_the_whole_text(runtime_on):
    runtime = runtime_on(FakeAsyncLLM(list(TEXT.encode())))
    deltas = list(runtime.stream({}, None, decode))
    assert deltas == ["h", "é", ",", " ", "o", "k"]
    assert "".join(deltas) == TEXT
    final = runtime.call(runtime.final_output({}, None))
    assert decode(list(final.outputs[0].token_ids)) == TEXT


def test_a_finished_text_ending_in_a_broken_character_is_sent(runtime_on):
    """The last step sends what decode gives, U+FFFD included, as generate's text has it."""
    tokens = list("ok".encode()) + [0xC3]
    deltas = list(runtime_on(FakeAsyncLLM(tokens)).stream({}, None, decode))
    assert "".join(deltas) == decode(tokens) == "ok\ufffd"


def test_closing_a_stream_early_aborts_its_request(runtime_on):
    engine = FakeAsyncLLM(list(TEXT.encode()), steps_before_wait=3)
    runtime = runtime_on(engine)
    deltas = runtime.stream({}, None, decode)
    assert next(deltas) == "h"
    deltas.close()  # a client that hung up
    assert engine.aborted == ["test-0"]
    runtime.call(asyncio.sleep(0.01))  # the cancelled task finishes its generator on the loop
    assert engine.running == set()


def test_an_engine_error_reaches_the_reader(runtime_on):
    runtime = runtime_on(FakeAsyncLLM(list(TEXT.encode()), fail_after=4))
    with pytest.raises(RuntimeError, match="engine core died"):
        list(runtime.stream({}, None, decode))


def test_call_all_runs_the_requests_together_and_keeps_their_order(runtime_on):
    runtime = runtime_on(FakeAsyncLLM(list(TEXT.encode())))
    finals = runtime.call_all([runtime.final_output({}, None) for _ in range(3)])
    assert [decode(list(f.outputs[0].token_ids)) for f in finals] == [TEXT] * 3


def test_close_is_idempotent_and_stops_the_loop_thread(runtime_on):
    engine = FakeAsyncLLM([1])
    runtime = runtime_on(engine)
    runtime.close()
    runtime.close()
    assert engine.shutdowns == 1 and runtime.closed and runtime.engine is None
    assert not any(t.name == "test-loop" for t in threading.enumerate())
    with pytest.raises(RuntimeError, match="closed"):
        runtime.call(asyncio.sleep(0))


def test_a_failed_engine_build_leaves_no_loop_thread():
    def build():
        raise ValueError("bad engine args")

    with pytest.raises(ValueError, match="bad engine args"):
        VLLMRuntime(build, name="failing")
    assert not any(t.name == "failing-loop" for t in threading.enumerate())
