"""`emoreason prep` with `engine: ray`: the same Featurizer, spread over a Ray cluster with Ray tasks and actors.

    samples -> decode + faces       one Ray task per sample (1 CPU), Featurizer.decode
            -> one actor pool per encoder forward pass, all given the same decoded sample at once
                                    Featurizer.encode of that pass's modalities, on up to ray.batch_size samples
            -> the driver           merges each sample's features, SampleExtractor.finish, writes in input order

Every stage calls the Featurizer, so the features, cache keys and cache files are the local engine's,
bit for bit; each sample still runs its own encoder forward (the encoder's batch_size splits it as
locally), since stacking several samples into one forward changes the floating-point sums. The driver
writes the results (runner.py's JsonlAppender) in input order, so samples.jsonl, resume, the report and the
rule "each sample once" are the local engine's too. A worker that dies is retried by Ray (tasks and actor
calls up to `MAX_RETRIES` times); when retries run out the run stops, and a rerun redoes only the
unfinished samples.

Why Ray core and not Ray Data (which an earlier version used; docs/scale_out.md has the measurements): the
pools of one sample are independent, so every pool gets the decoded sample at the same time, as one object in
the object store that each reads without a copy (its frames are numpy arrays), and sends back only its few
fp16 features; through a Ray Data pipeline each pool in turn unpickled and re-pickled the whole sample,
frames included. The actors start loading their encoders while the first samples decode, and results are
taken as they finish, whatever their order, then written in input order.
"""

from __future__ import annotations

import dataclasses
import functools
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emoreason.data_prep.extract import SampleExtractor, SampleResult, prep_featurizer
from emoreason.data_prep.prep_config import PrepConfig
from emoreason.features.featurizer import Decoded, EncoderLoadError, Featurized
from emoreason.ray_cluster import check_resources, ray_session
from emoreason.schema import Sample

MAX_RETRIES = 3
# An actor holds at most this many calls: one running, one queued behind it, so it never waits on the driver.
CALLS_PER_ACTOR = 2


def _set_threads(threads: int) -> None:
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


@functools.lru_cache(maxsize=4)
def _extractor(cfg_blob: bytes, out_dir: str, data_root: str) -> SampleExtractor:
    """One extractor per Ray worker process and config (Ray reuses worker processes across tasks)."""
    _set_threads(1)  # a decode task holds one CPU
    return SampleExtractor(pickle.loads(cfg_blob), out_dir, data_root)


def _decode(sample_json: str, cfg_blob: bytes, out_dir: str, data_root: str) -> tuple[Decoded | None, Any]:
    """(the decoded sample for the encoder pools, what the driver needs of it): the second is (the result so far,
    the modalities still to encode), or the SampleResult of a sample that failed to decode."""
    extractor = _extractor(cfg_blob, out_dir, data_root)
    sample = Sample.model_validate_json(sample_json)
    try:
        decoded = extractor.featurizer.decode(extractor.files(sample), sample_id=sample.id, landmarks=sample.landmarks)
    except EncoderLoadError:
        raise  # the face detector or an encoder cannot load: the setup's fault, it stops the run
    except Exception as exc:  # one bad clip must never stop the batch
        return None, SampleResult.crashed(sample.id, exc)
    return (decoded if decoded.pending else None), (decoded.result, list(decoded.pending))


class _EncoderActor:
    """Holds one encoder forward pass (one or more modalities) loaded once, and runs it on decoded samples."""

    def __init__(self, cfg_blob: bytes, out_dir: str, modalities: list[str], gpus: float):
        cfg: PrepConfig = pickle.loads(cfg_blob)
        if gpus > 0:  # Ray points CUDA_VISIBLE_DEVICES at this actor's GPU; device is no part of the cache key
            cfg = dataclasses.replace(cfg, encoders={m: dataclasses.replace(e, device="cuda") if m in modalities else e
                                                     for m, e in cfg.encoders.items()})
        _set_threads(max(1, int(cfg.ray.cpus_per_actor)))
        self.featurizer = prep_featurizer(cfg, out_dir)
        self.modalities = modalities
        for m in modalities:
            self.featurizer.encoder(m)  # load at start: a broken checkpoint fails the pool, not a sample

    def encode(self, refs: list) -> list[Any]:
        """Per sample: modality -> fp16 features of this pool's modalities, or the SampleResult of a sample whose
        input the encoder refused (it fails that sample only)."""
        import ray

        out: list[Any] = []
        for decoded in ray.get(refs):
            try:
                result = self.featurizer.encode(decoded, self.modalities)
                out.append({m: result.features[m] for m in self.modalities if m in result.features})
            except Exception as exc:
                out.append(SampleResult.crashed(decoded.sample_id, exc))
        return out


@dataclasses.dataclass
class _InFlight:
    """One sample between its decode and its result."""

    sample: Sample
    decoded: Any = None
    """The ObjectRef of its Decoded, held until every pool has it encoded."""
    result: Featurized | None = None
    pending: list[str] = dataclasses.field(default_factory=list)
    waiting: int = 0
    """Pools that still owe this sample features."""
    crash: SampleResult | None = None
    computed: dict[str, Any] = dataclasses.field(default_factory=dict)


class _Pool:
    """The actors of one encoder forward pass, and the samples waiting for one of them."""

    def __init__(self, actors: list, modalities: list[str], batch_size: int):
        self.actors, self.modalities, self.batch_size = actors, modalities, batch_size
        self.calls: dict[Any, int] = {}  # actor call -> the actor's index
        self.busy = [0] * len(actors)
        self.queue: list[int] = []  # sample indices

    def dispatch(self, flights: dict[int, _InFlight]) -> dict[Any, tuple[_Pool, list[int]]]:
        """Hand queued samples to actors: a whole batch to any actor with room, a part batch only to an idle one."""
        sent = {}
        while self.queue:
            actor = min(range(len(self.actors)), key=lambda a: self.busy[a])
            if self.busy[actor] >= CALLS_PER_ACTOR or (self.busy[actor] and len(self.queue) < self.batch_size):
                break
            batch, self.queue = self.queue[: self.batch_size], self.queue[self.batch_size:]
            call = self.actors[actor].encode.remote([flights[i].decoded for i in batch])
            self.calls[call] = actor
            self.busy[actor] += 1
            sent[call] = (self, batch)
        return sent

    def done(self, call) -> None:
        self.busy[self.calls.pop(call)] -= 1


def run_in_ray(cfg: PrepConfig, pending: list[Sample], out_dir: Path, data_root: Path) -> Iterator[SampleResult]:
    """Each pending sample's result, in input order, computed on the Ray cluster at `cfg.ray.address`."""
    with ray_session(cfg.ray.address, "ray.address") as ray:
        groups = prep_featurizer(cfg, out_dir).forward_groups()
        has_gpus = ray.cluster_resources().get("GPU", 0) >= 1
        gpus_per_actor = cfg.ray.gpus_per_actor if cfg.ray.gpus_per_actor is not None else (1.0 if has_gpus else 0.0)
        actors = len(groups) * cfg.ray.actors_per_encoder
        # The actors stay up for the whole run, and decoding needs at least one CPU beside them.
        check_resources(ray, {"CPU": actors * cfg.ray.cpus_per_actor + 1}, "ray.cpus_per_actor")
        check_resources(ray, {"GPU": actors * gpus_per_actor}, "ray.gpus_per_actor")
        finisher = SampleExtractor(cfg, out_dir, data_root)
        cfg_blob = pickle.dumps(cfg)
        # Started first, so the encoders load while the first samples decode.
        actor_class = ray.remote(_EncoderActor).options(
            num_cpus=cfg.ray.cpus_per_actor, num_gpus=gpus_per_actor, max_restarts=MAX_RETRIES,
            max_task_retries=MAX_RETRIES)
        pools = [_Pool([actor_class.remote(cfg_blob, str(out_dir), group, gpus_per_actor)
                        for _ in range(cfg.ray.actors_per_encoder)], group, cfg.ray.batch_size) for group in groups]
        decode = ray.remote(_decode).options(num_cpus=1, max_retries=MAX_RETRIES, num_returns=2)
        decode_cpus = max(1, int(ray.cluster_resources().get("CPU", 1) - actors * cfg.ray.cpus_per_actor))
        # Samples in flight: enough to keep every decode CPU and every actor busy, few enough to bound memory.
        window = 2 * decode_cpus + sum(len(p.actors) * CALLS_PER_ACTOR * cfg.ray.batch_size for p in pools)
        try:
            yield from _drive(ray, pending, pools, finisher, window,
                              lambda s: decode.remote(s.model_dump_json(), cfg_blob, str(out_dir), str(data_root)))
        finally:
            for pool in pools:  # their CPUs (and GPUs) are free for the next run at once
                for actor in pool.actors:
                    ray.kill(actor)


def _drive(ray, pending: list[Sample], pools: list[_Pool], finisher: SampleExtractor, window: int,
           submit_decode) -> Iterator[SampleResult]:
    """The driver's loop: keep `window` samples in flight, take whatever finishes first, yield in input order."""
    flights: dict[int, _InFlight] = {}
    decodes: dict[Any, int] = {}  # the summary ref of a sample's decode task -> its index
    calls: dict[Any, tuple[_Pool, list[int]]] = {}  # an actor call -> its pool and sample indices
    finished: dict[int, SampleResult] = {}
    next_submit = next_yield = 0
    while True:
        while next_yield in finished:
            yield finished.pop(next_yield)
            next_yield += 1
        if next_yield == len(pending):
            return
        while next_submit < len(pending) and len(flights) < window:
            decoded_ref, summary_ref = submit_decode(pending[next_submit])
            flights[next_submit] = _InFlight(pending[next_submit], decoded_ref)
            decodes[summary_ref] = next_submit
            next_submit += 1
        [ref], _ = ray.wait([*decodes, *calls], num_returns=1)
        if ref in decodes:
            index = decodes.pop(ref)
            flight = flights[index]
            summary = ray.get(ref)
            if isinstance(summary, SampleResult):
                flight.crash = summary
            else:
                flight.result, flight.pending = summary
                for pool in pools:
                    if any(m in flight.pending for m in pool.modalities):
                        pool.queue.append(index)
                        flight.waiting += 1
        else:
            pool, batch = calls.pop(ref)
            pool.done(ref)
            for i, features in zip(batch, ray.get(ref)):
                flights[i].waiting -= 1
                if isinstance(features, SampleResult):
                    flights[i].crash = flights[i].crash or features
                else:
                    flights[i].computed |= features
        for pool in pools:
            calls |= pool.dispatch(flights)
        for i in [i for i, f in flights.items() if f.waiting == 0 and (f.crash or f.result is not None)]:
            finished[i] = _finish(flights.pop(i), finisher)


def _finish(flight: _InFlight, finisher: SampleExtractor) -> SampleResult:
    if flight.crash is not None:
        return flight.crash
    result = flight.result
    for m in flight.pending:  # in the order the local engine's encode adds them
        result.features[m] = flight.computed[m]
    return finisher.finish(flight.sample, result)
