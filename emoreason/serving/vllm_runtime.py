"""One vLLM AsyncLLM on a private event loop thread: the runtime both vLLM backends stand on.

VLLMEngine (prompt embeddings) and NativeVLLMEngine (vLLM's own media processing) differ in what a
request carries, not in how it runs: AsyncLLM lives on an event loop in a background thread, and every
caller thread (the server's thread pool, `infer`, chat) submits its requests to that loop, so
concurrent requests share vLLM's continuous batching.

Text never comes from vLLM's detokenizer (requests go with `detokenize=False`): each engine decodes the
token ids itself, as its hf twin does. `stream` sends deltas of that same decoding. vLLM's own text
would drop a trailing partial UTF-8 character; ours ends in U+FFFD there, so such a text waits for the
next step unless the request has finished, and the deltas add up to exactly `generate`'s text.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import os
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

from emoreason.parent_watch import child_processes, start_reaper

_DONE = object()


class VLLMRuntime:
    """An AsyncLLM (or what `build_engine` returns) on its own event loop thread.

    `call` runs a coroutine there from any thread; `close()` (idempotent, also run at interpreter exit)
    stops vLLM's engine process, the loop and the reaper. Engines start it with `from_engine_args`.
    """

    @classmethod
    def from_engine_args(cls, engine_args, name: str) -> VLLMRuntime:
        """vLLM's AsyncLLM from a vllm AsyncEngineArgs; name prefixes the loop thread's name and the request ids."""
        from vllm.v1.engine.async_llm import AsyncLLM

        return cls(lambda: AsyncLLM.from_engine_args(engine_args), name)

    def __init__(self, build_engine: Callable[[], Any], name: str):
        self.name = name
        self._ids = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{name}-loop", daemon=True)
        self._thread.start()
        self._reaper = None
        before = set(child_processes(os.getpid()))
        try:
            # Built on its loop, so vLLM's output handler task lives where the requests are awaited.
            self.engine = self.call(_on_loop(build_engine))
        except BaseException:
            self.engine = None
            self._stop_loop()
            raise
        # vLLM's engine core outlives a SIGKILLed parent (the OOM killer's way), holding its memory:
        # a watcher kills the processes vLLM started once this one is gone.
        self._reaper = start_reaper([c for c in child_processes(os.getpid()) if c not in before])
        atexit.register(self.close)

    @property
    def closed(self) -> bool:
        return self._loop.is_closed()

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Runs `coroutine` on the engine's loop and returns its result (or raises its error) in this thread."""
        if self.closed:
            coroutine.close()  # never awaited: no "coroutine was never awaited" warning
            raise RuntimeError(f"the vLLM engine {self.name!r} is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def call_all(self, coroutines: Sequence[Coroutine[Any, Any, Any]]) -> list:
        """The coroutines' results, run concurrently on the loop: one vLLM batch, as continuous batching sees it."""

        async def run_all() -> list:
            return list(await asyncio.gather(*coroutines))

        return self.call(run_all())

    def request_id(self) -> str:
        return f"{self.name}-{next(self._ids)}"

    async def final_output(self, engine_input, params):
        """The request's last RequestOutput (awaited on the loop, inside `call`/`call_all`)."""
        final = None
        async for output in self.engine.generate(engine_input, params, request_id=self.request_id()):
            final = output
        return final

    def stream(self, engine_input, params, decode: Callable[[list[int]], str]) -> Iterator[str]:
        """Text deltas of one request, yielded in the caller's thread as vLLM generates.

        decode: token ids so far -> the text so far (the engine's own decoding, as its `generate` does).
        Closing the iterator early (a client that hung up) aborts the request, freeing vLLM's slot.
        """
        deltas: queue.Queue = queue.Queue()
        request_id = self.request_id()

        async def produce() -> None:
            sent = ""
            try:
                async for output in self.engine.generate(engine_input, params, request_id=request_id):
                    text = decode(list(output.outputs[0].token_ids))
                    if not output.finished and text.endswith("\ufffd"):
                        continue  # maybe half a character: wait for its other bytes
                    if text.startswith(sent) and len(text) > len(sent):
                        deltas.put(text[len(sent) :])
                        sent = text
                deltas.put(_DONE)
            except BaseException as exc:  # handed to the reader's thread
                deltas.put(exc)

        task = asyncio.run_coroutine_threadsafe(produce(), self._loop)
        try:
            while (item := deltas.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done() and not self.closed:  # the reader stopped early: free vLLM's slot for others
                task.cancel()
                self.call(self.engine.abort(request_id))

    def close(self) -> None:
        """Stop vLLM's engine process and the event loop thread (also run at interpreter exit)."""
        if self.closed:
            return

        async def shutdown() -> None:
            self.engine.shutdown()
            await asyncio.sleep(0.05)  # lets the cancelled output-handler task finish on this loop

        try:
            self.call(shutdown())
        finally:
            self.engine = None  # AsyncLLM.__del__ would shut down again at interpreter teardown
            self._stop_loop()
            if self._reaper is not None:
                self._reaper.kill()
                self._reaper.wait()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


async def _on_loop(build: Callable[[], Any]) -> Any:
    return build()
