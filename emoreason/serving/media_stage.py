"""Serving's media stage: decoding and face detection in a pool of workers, the encoders batched across requests.

Without it a live engine prepares one request's media at a time behind a lock, so on a busy server the
media work (decode, Haar on every sampled frame, four encoder forwards) is serialised and vLLM's batching
never shows. With it:

```
request threads ──► decode pool: `workers` threads or processes    Featurizer.decode (frames, audio, face crops)
                ──► one encode thread                               Featurizer.encode_many over the requests whose
                                                                     decode finished within `batch_window_ms`
```

The Featurizer stays the one implementation: the stage only decides where `decode` runs and which requests
share an `encode_many` call. `encode_many` stacks the requests' encoder inputs without padding, and its
features equal each request's own `featurize`, bit for bit (tests/test_media_stage.py).

A process worker that dies (the OOM killer, a decoder crash) breaks its pool: the pool is replaced and the
request's decode retried `retries` times, then the request fails with `MediaStageError` (a 500, never a hang).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING

from emoreason.config import check

if TYPE_CHECKING:  # the CLI reads MediaStageConfig's defaults without importing torch
    from emoreason.features.featurizer import Decoded, Featurized, Featurizer, MediaFiles

POOLS = ("thread", "process")
_STOP = object()
# Each decode worker (a pool thread, or a process's main thread) holds its own Featurizer: OpenCV does not
# promise that one CascadeClassifier may be used from several threads at once.
_worker = threading.local()


@dataclasses.dataclass
class MediaStageConfig:
    """`emoreason serve --media-workers/--media-pool/--media-batch-window-ms`; the engines' `media_stage=`."""

    workers: int = 2
    """Decode + face-detection workers; 0 turns the stage off (one request's media at a time, in its own thread)."""
    pool: str = "thread"
    """'thread': decord, PyAV and OpenCV release the GIL while they work, and threads cost no start-up or
    pickling; 'process': worker processes (spawned), for detector plug-ins that hold the GIL."""
    batch_window_ms: float = 5.0
    """How long the encode thread waits for more decoded requests, while some are still decoding, before it runs
    the encoders on what it has (with none decoding it never waits)."""
    max_batch: int = 32
    """Most requests in one encoder call."""
    retries: int = 1
    """Times a request's decode is retried after its worker process died."""

    def __post_init__(self) -> None:
        check(isinstance(self.workers, int) and self.workers >= 0, "media_stage.workers", "an integer >= 0", self.workers)
        check(self.pool in POOLS, "media_stage.pool", f"one of {list(POOLS)}", self.pool)
        check(self.batch_window_ms >= 0, "media_stage.batch_window_ms", "a number >= 0", self.batch_window_ms)
        check(isinstance(self.max_batch, int) and self.max_batch >= 1, "media_stage.max_batch", "an integer >= 1",
              self.max_batch)
        check(isinstance(self.retries, int) and self.retries >= 0, "media_stage.retries", "an integer >= 0", self.retries)


class MediaStageError(RuntimeError):
    """The media stage could not prepare a request (its decode worker died more often than `retries` allows)."""


def _init_worker(encoders, media) -> None:
    from emoreason.features.featurizer import Featurizer

    _worker.featurizer = Featurizer(encoders, media)


def _worker_ready() -> None:
    """Builds the worker's face detector now: one that cannot load fails start-up, not the first request."""
    if "face" in _worker.featurizer.encoders:
        _worker.featurizer.detector


def _decode_in_worker(files: MediaFiles, modalities: list[str] | None) -> Decoded:
    return _worker.featurizer.decode(files, modalities)


class MediaStage:
    """`featurize(files, modalities)` with Featurizer's answer, safe to call from any number of threads."""

    def __init__(self, featurizer: Featurizer, config: MediaStageConfig):
        """featurizer: the engine's, whose loaded encoders run the batched encode; each worker builds its own
        from the same settings to decode with."""
        check(config.workers >= 1, "media_stage.workers", "an integer >= 1 for a media stage", config.workers)
        self.featurizer = featurizer
        self.config = config
        self._pool_lock = threading.Lock()
        self._decoding = 0  # requests in the decode pool now: the encode thread waits for them, never for nobody
        self._pool = self._start_pool()
        self._queue: queue.Queue = queue.Queue()
        self._encoder_thread = threading.Thread(target=self._encode_loop, name="media-stage-encode", daemon=True)
        self._encoder_thread.start()

    def featurize(self, files: MediaFiles, modalities: Sequence[str] | None = None) -> Featurized:
        with self._pool_lock:
            self._decoding += 1
        try:
            decoded = self._decode(files, list(modalities) if modalities is not None else None)
        finally:
            with self._pool_lock:
                self._decoding -= 1
        if not decoded.pending:  # every modality absent: no encoder to wait for
            return decoded.result
        future: Future = Future()
        self._queue.put((decoded, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._encoder_thread.join(timeout=30)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- decode --------------------------------------------------------------------------------

    def _start_pool(self) -> Executor:
        args = {"initializer": _init_worker, "initargs": (self.featurizer.encoders, self.featurizer.media)}
        if self.config.pool == "thread":
            pool: Executor = ThreadPoolExecutor(self.config.workers, thread_name_prefix="media-decode", **args)
        else:
            # spawn, not fork: the engine process runs threads (vLLM's loop, torch's pools) that fork would copy mid-state
            pool = ProcessPoolExecutor(self.config.workers, mp_context=multiprocessing.get_context("spawn"), **args)
        # One warm-up call per worker, so processes are spawned and detectors loaded before the first request.
        for ready in [pool.submit(_worker_ready) for _ in range(self.config.workers)]:
            ready.result()
        return pool

    def _decode(self, files: MediaFiles, modalities: list[str] | None) -> Decoded:
        for _ in range(self.config.retries + 1):
            pool = self._pool
            try:
                return pool.submit(_decode_in_worker, files, modalities).result()
            except BrokenExecutor as exc:
                failure = exc
                self._replace(pool)
        names = ", ".join(str(p) for p in files.values())
        raise MediaStageError(f"a media worker died decoding {names} ({self.config.retries + 1} attempt(s)): "
                              f"{type(failure).__name__}: {failure}") from failure

    def _replace(self, broken: Executor) -> None:
        """A fresh pool in place of `broken`, once, however many requests saw it break."""
        with self._pool_lock:
            if self._pool is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start_pool()

    # -- encode --------------------------------------------------------------------------------

    def _encode_loop(self) -> None:
        while (first := self._queue.get()) is not _STOP:
            batch = [first]
            deadline = time.monotonic() + self.config.batch_window_ms / 1000
            stop = False
            while len(batch) < self.config.max_batch:
                # Wait up to the window only while other requests are still decoding: a lone request pays nothing.
                wait = max(0.0, deadline - time.monotonic()) if self._decoding else 0.0
                try:
                    item = self._queue.get(timeout=wait) if wait else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._encode(batch)
            if stop:
                return

    def _encode(self, batch: list[tuple[Decoded, Future]]) -> None:
        try:
            results = self.featurizer.encode_many([d for d, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
            else:  # find the culprit: every other request still gets its features (pending is intact on failure)
                for row in batch:
                    self._encode([row])
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)
