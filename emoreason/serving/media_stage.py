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

Requests whose files have the same content (sha256) and modalities share one decode and encode while one is in
flight, and a finished result is kept in a small memo (`memo_mb`): a chat client resends the conversation's clip
with every turn. The features are a pure function of the bytes and the model's settings, so a shared result is
the one the request would have computed; a result with a fault is never shared (its error names the other
request's file), and a request with annotated landmarks is never keyed.

The decode pool alone (`DecodePool`) is also the native engines' media pool (emoreason/serving/native_engine.py,
native_vllm.py): one pool implementation, each worker holding its own featurizer (and face detector).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from emoreason.config import check
from emoreason.serving.batching import BatchWorker

if TYPE_CHECKING:  # the CLI reads MediaStageConfig's defaults without importing torch
    from emoreason.features.featurizer import Decoded, Featurized, Featurizer, MediaFiles
    from emoreason.schema import Landmarks

POOLS = ("thread", "process")
# Each decode worker (a pool thread, or a process's main thread) holds its own featurizer: OpenCV does not
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
    memo_mb: float = 256.0
    """Features of recently featurized content kept for requests resending it (a chat's clip on every turn), in
    MiB of feature tensors, least recently used dropped first; 0: none kept (requests in flight together still
    share one computation)."""

    def __post_init__(self) -> None:
        check(isinstance(self.workers, int) and self.workers >= 0, "media_stage.workers", "an integer >= 0", self.workers)
        check(self.pool in POOLS, "media_stage.pool", f"one of {list(POOLS)}", self.pool)
        check(self.batch_window_ms >= 0, "media_stage.batch_window_ms", "a number >= 0", self.batch_window_ms)
        check(isinstance(self.max_batch, int) and self.max_batch >= 1, "media_stage.max_batch", "an integer >= 1",
              self.max_batch)
        check(isinstance(self.retries, int) and self.retries >= 0, "media_stage.retries", "an integer >= 0", self.retries)
        check(self.memo_mb >= 0, "media_stage.memo_mb", "a number >= 0", self.memo_mb)


class MediaStageError(RuntimeError):
    """The media stage could not prepare a request (its decode worker died more often than `retries` allows)."""


def _init_worker(make_worker: Callable[[], Any], ready: Callable[[Any], None] | None) -> None:
    _worker.state = make_worker()
    if ready is not None:
        ready(_worker.state)


def _run_in_worker(fn: Callable, args: tuple) -> Any:
    return fn(_worker.state, *args)


def _noop(state: Any) -> None:
    """The warm-up call: the initializer (a spawned process, a loaded detector) has run once it returns."""


class DecodePool:
    """`workers` threads (or spawned processes), each with its own state built by `make_worker()`, running
    `fn(state, *args)`; a process pool broken by a dying worker is replaced and the call retried `retries` times."""

    def __init__(self, make_worker: Callable[[], Any], workers: int, pool: str = "thread", retries: int = 1,
                 ready: Callable[[Any], None] | None = None):
        """make_worker, ready, fn: picklable (module-level functions, partials of them) for a process pool;
        ready(state): run once per worker at start-up, so a detector that cannot load fails start-up, not a request."""
        check(workers >= 1, "media_stage.workers", "an integer >= 1 for a media stage", workers)
        check(pool in POOLS, "media_stage.pool", f"one of {list(POOLS)}", pool)
        self.workers, self.kind, self.retries = workers, pool, retries
        self._initargs = (make_worker, ready)
        self._lock = threading.Lock()
        self._pool = self._start()

    def run(self, fn: Callable, *args: Any, what: str = "media", retries: int | None = None) -> Any:
        """fn(worker's state, *args) in a worker; MediaStageError once its worker died more often than `retries`
        (default: the pool's)."""
        retries = self.retries if retries is None else retries
        for _ in range(retries + 1):
            pool = self._pool
            try:
                return pool.submit(_run_in_worker, fn, args).result()
            except BrokenExecutor as exc:
                failure = exc
                self._replace(pool)
        raise MediaStageError(f"a media worker died decoding {what} ({retries + 1} attempt(s)): "
                              f"{type(failure).__name__}: {failure}") from failure

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start(self) -> Executor:
        args = {"initializer": _init_worker, "initargs": self._initargs}
        if self.kind == "thread":
            pool: Executor = ThreadPoolExecutor(self.workers, thread_name_prefix="media-decode", **args)
        else:
            # spawn, not fork: the engine process runs threads (vLLM's loop, torch's pools) that fork would copy mid-state
            pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"), **args)
        # One warm-up call per worker, so processes are spawned and detectors loaded before the first request.
        for ready in [pool.submit(_run_in_worker, _noop, ()) for _ in range(self.workers)]:
            ready.result()
        return pool

    def _replace(self, broken: Executor) -> None:
        """A fresh pool in place of `broken`, once, however many requests saw it break."""
        with self._lock:
            if self._pool is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()


def _featurizer_ready(featurizer: Featurizer) -> None:
    if "face" in featurizer.encoders:
        featurizer.detector


def _decode(featurizer: Featurizer, files: MediaFiles, modalities: list[str] | None,
            landmarks: Landmarks | None) -> Decoded:
    return featurizer.decode(files, modalities, landmarks=landmarks)


def _feature_bytes(result: Featurized) -> int:
    return sum(t.numel() * t.element_size() for t in result.features.values())


def _shared_copy(result: Featurized) -> Featurized:
    """The same tensors (nobody writes to them) in containers of the caller's own."""
    return dataclasses.replace(result, features=dict(result.features), absent=dict(result.absent),
                               cache_keys=dict(result.cache_keys))


class MediaStage:
    """`featurize(files, modalities)` with Featurizer's answer, safe to call from any number of threads."""

    def __init__(self, featurizer: Featurizer, config: MediaStageConfig):
        """featurizer: the engine's, whose loaded encoders run the batched encode; each worker builds its own
        from the same settings to decode with."""
        from emoreason.features.featurizer import Featurizer

        self.featurizer = featurizer
        self.config = config
        self._count_lock = threading.Lock()
        self._decoding = 0  # requests in the decode pool now: the encode thread waits for them, never for nobody
        self._pool = DecodePool(functools.partial(Featurizer, featurizer.encoders, featurizer.media), config.workers,
                                config.pool, config.retries, ready=_featurizer_ready)
        self._encoder = BatchWorker(lambda batch: self.featurizer.encode_many(batch), config.max_batch,
                                    "media-stage-encode", linger=self._linger)
        self._memo_lock = threading.Lock()
        self._memo: collections.OrderedDict[tuple, Featurized] = collections.OrderedDict()
        self._memo_bytes = 0
        self._in_flight: dict[tuple, Future] = {}

    def featurize(self, files: MediaFiles, modalities: Sequence[str] | None = None,
                  landmarks: Landmarks | None = None) -> Featurized:
        """landmarks: the request's annotated landmarks, as Featurizer.featurize takes them."""
        modalities = list(modalities) if modalities is not None else None
        key = None if landmarks is not None else _content_key(files, modalities)
        if key is None:
            return self._featurize(files, modalities, landmarks)
        with self._memo_lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return _shared_copy(self._memo[key])
            running = self._in_flight.get(key)
            if running is None:
                mine: Future = Future()
                self._in_flight[key] = mine
        if running is not None:  # the same content is being featurized for another request: wait for its result
            try:
                shared = running.result()
            except Exception:
                shared = None  # its failure names its files: compute ours, to fail (or not) with our own
            if shared is not None and not shared.faults():
                return _shared_copy(shared)
            return self._featurize(files, modalities, landmarks)
        try:
            result = self._featurize(files, modalities, landmarks)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._memo_lock:
                del self._in_flight[key]
        mine.set_result(result)
        if not result.faults():
            self._remember(key, result)
        return _shared_copy(result) if not result.faults() else result

    def close(self) -> None:
        self._encoder.close()
        self._pool.close()

    def _featurize(self, files: MediaFiles, modalities: list[str] | None, landmarks: Landmarks | None) -> Featurized:
        with self._count_lock:
            self._decoding += 1
        try:
            names = ", ".join(str(p) for p in files.values())
            decoded = self._pool.run(_decode, files, modalities, landmarks, what=names, retries=self.config.retries)
        finally:
            with self._count_lock:
                self._decoding -= 1
        if not decoded.pending:  # every modality absent: no encoder to wait for
            return decoded.result
        return self._encoder.submit(decoded).result()

    def _linger(self, started: float) -> float:
        # Wait up to the window only while other requests are still decoding: a lone request pays nothing.
        return max(0.0, started + self.config.batch_window_ms / 1000 - time.monotonic()) if self._decoding else 0.0

    def _remember(self, key: tuple, result: Featurized) -> None:
        size = _feature_bytes(result)
        budget = self.config.memo_mb * 2**20
        if size > budget:
            return
        with self._memo_lock:
            if key in self._memo:
                return
            self._memo[key] = result
            self._memo_bytes += size
            while self._memo_bytes > budget:
                _, dropped = self._memo.popitem(last=False)
                self._memo_bytes -= _feature_bytes(dropped)


def _content_key(files: MediaFiles, modalities: list[str] | None) -> tuple | None:
    """What the features are a function of: each file's sha256 and the modalities asked for; None when a file is
    already refused or cannot be read (its own decode reports it)."""
    from emoreason.features.hashing import file_content_hash
    from emoreason.media.errors import MediaError

    hashes = []
    for kind, path in sorted(files.items()):
        if isinstance(path, MediaError) or not os.path.isfile(path):  # never open a fifo: it would block
            return None
        try:
            hashes.append((kind, file_content_hash(path)))
        except OSError:
            return None
    return tuple(hashes), None if modalities is None else tuple(modalities)
