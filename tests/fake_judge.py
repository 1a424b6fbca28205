"""A scriptable OpenAI-compatible judge for tests and benchmarks: POST /v1/chat/completions."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class FakeJudge:
    """`reply(call_number, body)` returns the reply text, an int HTTP status to fail with, or a dict
    sent as the whole response body (to play a server whose completions are garbled)."""

    def __init__(self, reply: Callable[[int, dict], str | int | dict] = lambda n, body: "Reasons.\nScore: 7", delay: float = 0.0):
        self.reply = reply
        self.delay = delay
        self.calls = 0
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self._ids = itertools.count()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request):
            body = await request.json()
            number = self.calls
            self.calls += 1
            self.bodies.append(body)
            self.auth.append(request.headers.get("authorization"))
            if self.delay:
                await asyncio.sleep(self.delay)
            answer = self.reply(number, body)
            if isinstance(answer, int):
                return JSONResponse({"error": {"message": "scripted failure", "type": "server_error"}}, status_code=answer)
            if isinstance(answer, dict):
                return JSONResponse(answer)
            return {
                "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }

        return app
