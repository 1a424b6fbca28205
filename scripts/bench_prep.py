"""Benchmark `emoreason prep`: the local engine with 1 and 2 workers (1 thread each) and the Ray engine on the same clips and cores, and decode overhead against raw decord.

    .venv/bin/python scripts/bench_prep.py [--clips 64] [--repeats 5]

Prints one JSON object. Everything is generated locally (synthetic clips, tiny encoders).

Each prep setting runs twice, over the first half of the clips and over all of them, each run into its own
output directory and feature cache (so no cache hits). Per setting (the JSON's "definitions" says the same):

- wall_s, clips_per_s: the run over all the clips, the whole `run_prep` call: preflight, start-up of the
  workers or actors (each loads the encoders), every clip. The Ray instance's own start (`ray.init`) is timed
  apart (ray_init_s): a cluster outlives the jobs it runs.
- steady_clips_per_s: the clips the full run adds over the half run, over the wall time it adds. Every fixed
  cost cancels, and unlike a first-to-last-completion rate it does not depend on when results reach the
  driver (the Ray engine returns them in input order, so they arrive in bursts).
- startup_s: wall_s minus clips / steady_clips_per_s, the fixed cost that rate implies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing.forkserver
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

DEFINITIONS = {
    "wall_s": "the run_prep call over all the clips: preflight, worker/actor start-up, every clip (ray.init apart)",
    "clips_per_s": "clips / wall_s",
    "steady_clips_per_s": "(clips - half_clips) / (wall_s - half_wall_s): the rate of the clips a run of all the "
                          "clips adds over a run of the first half, so fixed costs cancel",
    "startup_s": "wall_s - clips / steady_clips_per_s",
}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _prep_wall(data: Path, encoders: dict[str, str], out: Path, workers: int, threads: int | None, engine: str) -> dict:
    from emoreason.config import load_config
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.data_prep.runner import run_prep

    overrides = [f"input={data}", f"output_dir={out}", f"workers={workers}", "progress=false", f"engine={engine}"]
    overrides += [f"threads_per_worker={threads}"] if threads else []
    overrides += [f"encoders.{m}.model={p}" for m, p in encoders.items()]
    cfg = load_config(PrepConfig, Path(__file__).resolve().parents[1] / "configs/prep/demo.yaml", overrides)
    load_before = _load()
    start = time.perf_counter()
    report = run_prep(cfg)
    wall = time.perf_counter() - start
    if engine == "local" and workers > 1:
        # The worker pool's forkserver outlives the run in this process; a prep command starts its own, so
        # each run here does too (else only the first run would pay for it).
        multiprocessing.forkserver._forkserver._stop()
    assert report.counts["failed"] == 0, report.summary()
    return {"clips": report.processed(), "wall_s": wall, "frames": report.frames_decoded,
            "load_before": load_before, "load_after": _load()}


def bench_setting(inputs: tuple[Path, Path], encoders: dict[str, str], work: Path, workers: int,
                  threads: int | None = None, engine: str = "local", around=contextlib.nullcontext()) -> dict:
    """One prep setting over the half input and the full input (see the module docstring); `around` is
    entered for each run."""
    name = f"prep_{engine}_w{workers}_t{threads}"
    runs = []
    for part, data in zip(("half", "full"), inputs):
        with around:
            runs.append(_prep_wall(data, encoders, work / f"{name}_{part}", workers, threads, engine))
    half, full = runs
    added_clips, added_s = full["clips"] - half["clips"], full["wall_s"] - half["wall_s"]
    steady = added_clips / added_s if added_s > 0 else float("nan")
    return {
        "engine": engine,
        "workers": workers if engine == "local" else None,
        "threads_per_worker": (threads or "auto") if engine == "local" else None,
        "clips": full["clips"],
        "wall_s": round(full["wall_s"], 2),
        "clips_per_s": round(full["clips"] / full["wall_s"], 3),
        "half_clips": half["clips"],
        "half_wall_s": round(half["wall_s"], 2),
        "steady_clips_per_s": round(steady, 3),
        "steady_frames_per_s": round(steady * full["frames"] / full["clips"], 2),
        "startup_s": round(full["wall_s"] - full["clips"] / steady, 2),
        "load_avg": {"half_before": half["load_before"], "full_before": full["load_before"], "full_after": full["load_after"]},
    }


class _FreshRay:
    """A new local Ray instance of `cpus` CPUs for each run, as a prep command on a new cluster would find it
    (Ray keeps a job's worker processes, imports done, for its next tasks): its start is timed, not counted."""

    def __init__(self, cpus: int):
        self.cpus, self.init_s = cpus, []

    def __enter__(self):
        import ray
        import ray.data  # noqa: F401  (the first import of Ray Data is part of starting, not of the run)

        start = time.perf_counter()
        ray.init(num_cpus=self.cpus, include_dashboard=False, log_to_driver=False)
        self.init_s.append(round(time.perf_counter() - start, 2))

    def __exit__(self, *exc):
        import ray

        ray.shutdown()


def bench_ray(inputs: tuple[Path, Path], encoders: dict[str, str], work: Path, cpus: int) -> dict | None:
    """The Ray engine (its default settings) on a local Ray instance of `cpus` CPUs."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return None
    fresh = _FreshRay(cpus)
    result = bench_setting(inputs, encoders, work, 1, engine="ray", around=fresh)
    return result | {"ray_cpus": cpus, "ray_init_s": fresh.init_s}


def bench_decode(clips: list[Path], num_frames: int, repeats: int) -> dict:
    import decord

    from emoreason.media.video import FrameSampling, decode_frames, sample_frame_indices

    sampling = FrameSampling(num_frames=num_frames)

    def ours() -> int:
        return sum(len(decode_frames(c, sampling).frames) for c in clips)

    def raw() -> int:
        n = 0
        for c in clips:
            reader = decord.VideoReader(str(c))
            indices = sample_frame_indices(len(reader), reader.get_avg_fps(), sampling)
            n += len(reader.get_batch(indices.tolist()).asnumpy())
        return n

    timings: dict[str, list[float]] = {"ours": [], "raw": []}
    frames = 0
    for _ in range(repeats):
        # Interleave so both see the same page-cache and CPU-frequency conditions.
        for name, fn in (("ours", ours), ("raw", raw)):
            start = time.perf_counter()
            frames = fn()
            timings[name].append(time.perf_counter() - start)
    per_frame = {k: statistics.median(v) / frames for k, v in timings.items()}
    return {
        "frames_per_clip": num_frames,
        "clips": len(clips),
        "ours_ms_per_frame": round(per_frame["ours"] * 1e3, 4),
        "raw_decord_ms_per_frame": round(per_frame["raw"] * 1e3, 4),
        "overhead_ratio": round(per_frame["ours"] / per_frame["raw"], 3),
    }


def _ratio(a: dict, b: dict, key: str) -> float:
    return round(a[key] / b[key], 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64, help="synthetic clips (split over 4 classes); the half runs take the first half")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    args = parser.parse_args(argv)

    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.encoders.tiny import build_tiny_encoders
    from emoreason.schema import write_samples

    started, load_start = time.perf_counter(), _load()
    # stdout carries the JSON alone: libraries that print while loading (DeepSpeed's accelerator notice) go to stderr.
    with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory(prefix="bench_prep_") as tmp:
        work = Path(tmp)
        samples = generate_dataset(work / "data", SyntheticConfig(num_per_class=max(2, args.clips // 4), seed=1))
        write_samples(work / "data/half.jsonl", samples[: len(samples) // 2])  # same data root as the full input
        inputs = (work / "data/half.jsonl", work / "data/samples.jsonl")
        encoders = build_tiny_encoders(work / "encoders")
        write_samples(work / "data/warmup.jsonl", samples[:4])
        warmup = time.perf_counter()
        # This process imports every encoder's modules once (the preflight of any prep command does), so that
        # cost lands in no setting's first run.
        _prep_wall(work / "data/warmup.jsonl", encoders, work / "warmup", 1, None, "local")
        warmup_s = round(time.perf_counter() - warmup, 2)
        two = bench_setting(inputs, encoders, work, 2)
        on_ray = None if args.no_ray else bench_ray(inputs, encoders, work, 2)
        one = bench_setting(inputs, encoders, work, 1, threads=1)
        clips = [work / "data" / s.media.video for s in samples]
        decode = bench_decode(clips, 8, args.repeats)
    result = {
        "benchmark": "prep",
        "definitions": DEFINITIONS,
        "warmup_s": warmup_s,
        # 2 workers get 1 thread each (threads_per_worker auto on 2 cores), so the single worker has 1 too: with
        # both cores' threads, one worker on a loaded 2-core machine loses more to thread contention than it gains.
        "workers_1": one,
        "workers_2": two,
        "speedup_2_vs_1": _ratio(two, one, "steady_clips_per_s"),
        "speedup_2_vs_1_end_to_end": _ratio(two, one, "clips_per_s"),
        "decode": decode,
        "goals": {"speedup_2_vs_1": ">= 1.8", "decode_overhead_ratio": "<= 1.25", "ray_vs_local_2_workers": ">= 0.9"},
        "cpu_count": os.cpu_count(),
    }
    if on_ray is not None:
        # Same clips and the same 2 cores: the Ray engine's overhead over the local engine's best on them.
        result["ray_2_cpus"] = on_ray
        result["ray_vs_local_2_workers"] = _ratio(on_ray, two, "clips_per_s")
        result["ray_vs_local_2_workers_steady"] = _ratio(on_ray, two, "steady_clips_per_s")
    result["bench_s"] = round(time.perf_counter() - started, 1)
    result["load_avg_start_end"] = [load_start, _load()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
