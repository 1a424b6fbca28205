"""`emoreason prep` with `engine: ray`: the same Featurizer, spread over a Ray cluster with Ray Data.

    samples (a Ray dataset) -> decode + faces (CPU tasks, Featurizer.decode)
        -> one actor pool per encoder forward pass (Featurizer.encode on batches of samples)
        -> the driver (SampleExtractor.finish, then samples.jsonl / status.jsonl / report.json)

Every stage calls the Featurizer, so the features, cache keys and cache files are the local engine's,
bit for bit; each sample still runs its own encoder forward (the encoder's batch_size splits it as
locally), since stacking several samples into one forward changes the floating-point sums. The driver
writes the results (runner.py's JsonlAppender), so resume, the report and the rule "each sample once"
are the local engine's too. A worker that dies is retried by Ray (tasks and actor calls up to
`MAX_RETRIES` times); when retries run out the run stops, and a rerun redoes only the unfinished samples.
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
    _set_threads(1)  # a decode task holds one CPU
    return SampleExtractor(pickle.loads(cfg_blob), out_dir, data_root)


def _decode_row(row: dict[str, Any], cfg_blob: bytes, out_dir: str, data_root: str) -> dict[str, Any]:
    extractor = _extractor(cfg_blob, out_dir, data_root)
    sample = Sample.model_validate_json(row["sample"])
    try:
        decoded = extractor.featurizer.decode(extractor.files(sample), sample_id=sample.id, landmarks=sample.landmarks)
        return {"sample": row["sample"], "decoded": pickle.dumps(decoded), "crash": b""}
    except EncoderLoadError:
        raise  # the face detector or an encoder cannot load: the setup's fault, it stops the run
    except Exception as exc:  # one bad clip must never stop the batch
        return {"sample": row["sample"], "decoded": b"", "crash": pickle.dumps(SampleResult.crashed(sample.id, exc))}


class _EncoderActor:
    """Holds one encoder forward pass (one or more modalities) loaded once, and runs it on batches of samples."""

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
                        blob = pickle.dumps(decoded)
                    except Exception as exc:  # an encoder refusing one sample's input fails that sample only
                        sample_id = Sample.model_validate_json(sample_json).id
                        crash, blob = pickle.dumps(SampleResult.crashed(sample_id, exc)), b""
            blobs.append((blob, crash))
        return {"sample": list(batch["sample"]), "decoded": [b for b, _ in blobs], "crash": [c for _, c in blobs]}


def _build_dataset(ray, cfg: PrepConfig, pending: list[Sample], out_dir: Path, data_root: Path, gpus_per_actor: float):
    cfg_blob = pickle.dumps(cfg)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # samples.jsonl in input order, as the local engine writes it
    context.enable_progress_bars = False  # the runner draws its own bar
    rows = [{"sample": s.model_dump_json()} for s in pending]
    # One row per block: each sample is its own decode task, so the cluster's CPUs share the work evenly.
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    dataset = dataset.map(_decode_row, fn_kwargs={"cfg_blob": cfg_blob, "out_dir": str(out_dir), "data_root": str(data_root)},
                          num_cpus=1, max_retries=MAX_RETRIES)
    for group in prep_featurizer(cfg, out_dir).forward_groups():
        dataset = dataset.map_batches(
            _EncoderActor,
            fn_constructor_kwargs={"cfg_blob": cfg_blob, "out_dir": str(out_dir), "modalities": group, "gpus": gpus_per_actor},
            batch_size=cfg.ray.batch_size, batch_format="numpy", concurrency=cfg.ray.actors_per_encoder,
            num_cpus=cfg.ray.cpus_per_actor, num_gpus=gpus_per_actor,
            max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES,
        )
    return dataset


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
        dataset = _build_dataset(ray, cfg, pending, out_dir, data_root, gpus_per_actor)
        for row in dataset.iter_rows():
            if row["crash"]:
                yield pickle.loads(row["crash"])
                continue
            decoded = pickle.loads(row["decoded"])
            yield finisher.finish(Sample.model_validate_json(row["sample"]), decoded.result)

