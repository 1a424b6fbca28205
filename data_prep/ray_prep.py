"""`emoreason prep` with `engine: ray`: the same Featurizer, spread over a Ray cluster with Ray Data.

    samples (a Ray dataset) -> decode + faces (CPU tasks, Featurizer.decode)
        -> encoder actor pools (Featurizer.encode on batches of samples): one pool per encoder forward pass
           where the actors hold GPUs, one pool of actors holding every encoder elsewhere
        -> the driver (SampleExtractor.finish, then samples.jsonl / status.jsonl / report.json)

Every stage calls the Featurizer, so the features, cache keys and cache files are the local engine's,
bit for bit; each sample still runs its own encoder forward (the encoder's batch_size splits it as
locally), since stacking several samples into one forward changes the floating-point sums. The driver
writes the results (runner.py's JsonlAppender), so resume, the report and the rule "each sample once"
are the local engine's too. A worker that dies is retried by Ray (tasks and actor calls up to
`MAX_RETRIES` times); when retries run out the run stops, and a rerun redoes only the unfinished samples.

Where the time goes on a small cluster (docs/scale_out.md, scripts/bench_prep.py): the per-sample work is
the local engine's, and what Ray adds is start-up, chiefly each actor process importing torch and
transformers and loading its encoders (about 10 s of CPU each on the bench machine). So CPU encoders share
one pool: a separate pool per encoder buys nothing without a GPU to pin it to, and costs an actor process
per encoder and a hand-off of the whole decoded sample per pool.
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
from emoreason.features.featurizer import EncoderLoadError
from emoreason.ray_cluster import check_resources, ray_session
from emoreason.schema import Sample

MAX_RETRIES = 3


def _set_threads(threads: int) -> None:
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


@functools.lru_cache(maxsize=4)
def _extractor(cfg_blob: bytes, out_dir: str, data_root: str) -> SampleExtractor:
    """One extractor per Ray worker process and config (Ray reuses worker processes across tasks)."""
    _set_threads(1)  # a decode task holds (at most) one CPU
    return SampleExtractor(pickle.loads(cfg_blob), out_dir, data_root)


def _decode_row(row: dict[str, Any], cfg_blob: bytes, out_dir: str, data_root: str) -> dict[str, Any]:
    extractor = _extractor(cfg_blob, out_dir, data_root)
    sample = Sample.model_validate_json(row["sample"])
    try:
        decoded = extractor.featurizer.decode(extractor.files(sample), sample_id=sample.id, landmarks=sample.landmarks)
        return {"index": row["index"], "sample": row["sample"], "decoded": pickle.dumps(decoded), "crash": b""}
    except EncoderLoadError:
        raise  # the face detector or an encoder cannot load: the setup's fault, it stops the run
    except Exception as exc:  # one bad clip must never stop the batch
        return {"index": row["index"], "sample": row["sample"], "decoded": b"",
                "crash": pickle.dumps(SampleResult.crashed(sample.id, exc))}


class _EncoderActor:
    """Holds the encoders of its pool (one forward pass, or every encoder) loaded once, and runs them on batches."""

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

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        blobs = []
        for blob, crash, sample_json in zip(batch["decoded"], batch["crash"], batch["sample"]):
            if not crash:
                decoded = pickle.loads(blob)
                if any(m in decoded.pending for m in self.modalities):
                    try:
                        self.featurizer.encode(decoded, self.modalities)
                        blob = pickle.dumps(decoded)  # without the inputs just encoded (encode drops them)
                    except Exception as exc:  # an encoder refusing one sample's input fails that sample only
                        sample_id = Sample.model_validate_json(sample_json).id
                        crash, blob = pickle.dumps(SampleResult.crashed(sample_id, exc)), b""
            blobs.append((blob, crash))
        return {"index": list(batch["index"]), "sample": list(batch["sample"]),
                "decoded": [b for b, _ in blobs], "crash": [c for _, c in blobs]}


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How the run uses the cluster: the encoder pools and the decode tasks' share of the CPUs."""

    pools: list[list[str]]
    """The modalities each actor of a pool holds."""
    gpus_per_actor: float
    decode_cpus: float
    """CPUs each decode task reserves: the CPUs the actors leave, split evenly between as many tasks at once
    as that rounds to (at least one), so the decoders fill the cores beside the mostly idle actors."""


def _plan(ray, cfg: PrepConfig, groups: list[list[str]]) -> _Plan:
    resources = ray.cluster_resources()
    gpus = cfg.ray.gpus_per_actor if cfg.ray.gpus_per_actor is not None else (1.0 if resources.get("GPU", 0) >= 1 else 0.0)
    per_encoder = cfg.ray.pool_per_encoder if cfg.ray.pool_per_encoder is not None else gpus > 0
    pools = groups if per_encoder else [[m for group in groups for m in group]]
    reserved = len(pools) * cfg.ray.actors_per_encoder * cfg.ray.cpus_per_actor
    # The actors stay up for the whole run, and decoding needs at least one CPU beside them.
    check_resources(ray, {"CPU": reserved + 1}, "ray.cpus_per_actor")
    check_resources(ray, {"GPU": len(pools) * cfg.ray.actors_per_encoder * gpus}, "ray.gpus_per_actor")
    free = resources.get("CPU", 0) - reserved
    return _Plan(pools, gpus, free / max(1, int(free + 0.5)))  # half rounds up


def _build_dataset(ray, cfg: PrepConfig, pending: list[Sample], out_dir: Path, data_root: Path, plan: _Plan):
    cfg_blob = pickle.dumps(cfg)
    context = ray.data.DataContext.get_current()
    # Results are taken as they finish (an in-order pipeline holds finished samples back behind a slow one);
    # run_in_ray puts them back in input order.
    context.execution_options.preserve_order = False
    context.enable_progress_bars = False  # the runner draws its own bar
    rows = [{"index": i, "sample": s.model_dump_json()} for i, s in enumerate(pending)]
    # One row per block: each sample is its own decode task, so the cluster's CPUs share the work evenly.
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    dataset = dataset.map(_decode_row, fn_kwargs={"cfg_blob": cfg_blob, "out_dir": str(out_dir), "data_root": str(data_root)},
                          num_cpus=plan.decode_cpus, max_retries=MAX_RETRIES)
    for modalities in plan.pools:
        dataset = dataset.map_batches(
            _EncoderActor,
            fn_constructor_kwargs={"cfg_blob": cfg_blob, "out_dir": str(out_dir), "modalities": modalities,
                                   "gpus": plan.gpus_per_actor},
            batch_size=cfg.ray.batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=cfg.ray.actors_per_encoder),
            num_cpus=cfg.ray.cpus_per_actor, num_gpus=plan.gpus_per_actor,
            max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES,
        )
    return dataset


def run_in_ray(cfg: PrepConfig, pending: list[Sample], out_dir: Path, data_root: Path) -> Iterator[SampleResult]:
    """Each pending sample's result, in input order, computed on the Ray cluster at `cfg.ray.address`."""
    with ray_session(cfg.ray.address, "ray.address") as ray:
        plan = _plan(ray, cfg, prep_featurizer(cfg, out_dir).forward_groups())
        finisher = SampleExtractor(cfg, out_dir, data_root)
        dataset = _build_dataset(ray, cfg, pending, out_dir, data_root, plan)
        finished: dict[int, SampleResult] = {}  # results ahead of the next one in input order
        next_index = 0
        for row in dataset.iter_rows():
            finished[int(row["index"])] = _result(row, finisher)
            while next_index in finished:  # samples.jsonl in input order, as the local engine's single worker writes it
                yield finished.pop(next_index)
                next_index += 1
        if next_index != len(pending):  # Ray lost a row: say so, never end as if the run were whole
            missing = [s.id for i, s in enumerate(pending) if i >= next_index and i not in finished]
            raise RuntimeError(f"the Ray dataset ended without {len(missing)} sample(s) ({', '.join(missing[:5])}"
                               f"{', ...' if len(missing) > 5 else ''}); the {len(finished)} result(s) after them were "
                               "not written. Run the same command again: finished samples are skipped")


def _result(row: dict[str, Any], finisher: SampleExtractor) -> SampleResult:
    if row["crash"]:
        return pickle.loads(row["crash"])
    return finisher.finish(Sample.model_validate_json(row["sample"]), pickle.loads(row["decoded"]).result)
