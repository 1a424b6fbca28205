"""`emoreason infer --engine ray --replicas N`: the batch job data-parallel over N engine replicas on Ray Data.

Each replica is a Ray actor holding one engine of the chosen backend (one GPU each where the LLM device
is a GPU). The samples are cut into the local run's chunks of --batch-size, in order, and each chunk
is one dataset row, so a replica generates exactly the batches the local run generates and the
predictions file is the local run's, line for line. The driver writes every record (infer.py's
JsonlAppender), so resume is the local run's too: a rerun skips the ids already written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from emoreason.ray_cluster import check_resources, ray_session
from emoreason.schema import Sample

MAX_RETRIES = 3


class _Replica:
    """One engine, loaded once, that predicts whole chunks."""

    def __init__(self, options: dict[str, Any]):
        from emoreason.serving.infer import load_batch_engine

        self.options = options
        self.engine = load_batch_engine(options["backend"], options["model"], options["device"], options["batch_size"],
                                        options["trust"])

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from emoreason.serving.infer import predict_chunk

        o = self.options
        out = []
        for chunk_json in batch["chunk"]:
            chunk = [Sample.model_validate(s) for s in json.loads(chunk_json)]
            records = predict_chunk(self.engine, chunk, o["labels"], data_root=o["data_root"], samples_dir=o["samples_dir"],
                                    feature_source=o["feature_source"], max_tokens=o["max_tokens"])
            out.append(json.dumps(records))
        return {"records": out}


def predict_on_ray(todo: Sequence[Sample], options: dict[str, Any], replicas: int, address: str | None) -> Iterator[list[dict]]:
    """The records of each chunk of `todo`, in order. options: infer's engine and prompt settings
    (backend, model, device, batch_size, trust, labels, data_root, samples_dir, feature_source, max_tokens)."""
    with ray_session(address, "--ray-address") as ray:
        gpus = 1.0 if str(options["device"]).startswith("cuda") else 0.0
        check_resources(ray, {"CPU": replicas, "GPU": replicas * gpus}, "--replicas")
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        size = options["batch_size"]
        chunks = [json.dumps([s.to_json() for s in todo[i:i + size]]) for i in range(0, len(todo), size)]
        dataset = ray.data.from_items([{"chunk": c} for c in chunks], override_num_blocks=max(1, len(chunks)))
        dataset = dataset.map_batches(_Replica, fn_constructor_kwargs={"options": options}, batch_size=1,
                                      concurrency=replicas, num_cpus=1, num_gpus=gpus,
                                      max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES)
        for row in dataset.iter_rows():
            yield json.loads(row["records"])


def infer_options(args, labels: Sequence[str], data_root: Path | None, samples_dir: Path) -> dict[str, Any]:
    from emoreason.serving.trust_options import trust_from_args

    return {"backend": args.backend, "model": str(args.model), "device": args.device, "batch_size": args.batch_size,
            "trust": trust_from_args(args), "labels": list(labels), "data_root": data_root, "samples_dir": samples_dir,
            "feature_source": args.feature_source, "max_tokens": args.max_tokens}
