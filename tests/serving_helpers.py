"""For server and chat tests: a deterministic engine that needs no trained model, and a live uvicorn server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from emoreason.media.errors import MediaError
from emoreason.serving.engine import Completion, GenerationRequest


class FakeEngine:
    """Answers "happy" plus the media kinds it got and the turn count; a file named bad.mp4 is a MediaError,
    a doubled <video> placeholder a ValueError.

    Calls are serialised with a lock, as a real engine holding one model would; `delay` seconds per
    call make concurrency visible.
    """

    model_name = "fake-emotion"

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.requests: list[GenerationRequest] = []
        self._lock = threading.Lock()

    def reply(self, request: GenerationRequest) -> str:
        if any("<video><video>" in m["content"] for m in request.messages):
            raise ValueError("placeholder <video> appears twice")  # as HFEngine refuses such a prompt
        for item in request.media:
            if item.path.name == "bad.mp4":
                raise MediaError("unreadable", item.path, f"fake decoder refuses {item.path}")
        kinds = ",".join(item.kind for item in request.media) or "none"
        users = sum(m["role"] == "user" for m in request.messages)
        return f"happy media={kinds} turns={users} last={request.messages[-1]['content']}"

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        with self._lock:
            time.sleep(self.delay)
            self.requests.extend(requests)
            texts = [self.reply(r) for r in requests]
        return [
            Completion(t, prompt_tokens=len(r.messages), completion_tokens=len(t.split()), finish_reason="stop")
            for t, r in zip(texts, requests)
        ]

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        with self._lock:
            time.sleep(self.delay)
            self.requests.append(request)
            words = self.reply(request).split(" ")
            for i, word in enumerate(words):
                yield word if i == 0 else " " + word


@contextlib.contextmanager
def running_server(app, timeout: float = 20.0) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL; stops on exit."""
    # Binding the socket here (port 0) rather than picking a free port first leaves no race with other tests.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
