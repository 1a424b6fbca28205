"""One thread that serves concurrent callers' items in shared batches: the embed batcher's and the media stage's.

Callers block on their own item's Future. The thread takes the first queued item, then whatever else is queued
(up to `max_batch`), waiting up to `linger(started)` seconds for more, and runs `serve` over the batch once. A
batch that fails is retried item by item, so one bad item fails alone and every other still gets its answer
(`serve` must leave its items as they were when it raises).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_STOP = object()


class BatchWorker:
    def __init__(self, serve: Callable[[list], list], max_batch: int, name: str,
                 linger: Callable[[float], float] | None = None):
        """serve: items -> their results, in order; linger: seconds still to wait for more items, given the
        batch's start (time.monotonic()); None: never wait (take only what is queued already)."""
        self.serve = serve
        self.max_batch = max_batch
        self.linger = linger
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> Future:
        future: Future = Future()
        self._queue.put((item, future))
        return future

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while (first := self._queue.get()) is not _STOP:
            batch = [first]
            started = time.monotonic()
            stop = False
            while len(batch) < self.max_batch:
                wait = self.linger(started) if self.linger is not None else 0.0
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._serve(batch)
            if stop:
                return

    def _serve(self, batch: list[tuple[Any, Future]]) -> None:
        try:
            results = self.serve([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
            else:  # find the culprit: every other item still gets its answer
                for row in batch:
                    self._serve([row])
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)
