"""Benchmark `emoreason prep`: throughput with 1 and 2 workers, the Ray engine on the same cores, and decode overhead against raw decord.

    .venv/bin/python scripts/bench_prep.py [--clips 32] [--repeats 5]

Prints one JSON object. Everything is generated locally (synthetic clips, tiny encoders).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_workers(data: Path, encoders: dict[str, str], work: Path, workers: int, threads: int | None = None,
                  engine: str = "local") -> dict:
    from emoreason.config import load_config
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.data_prep.runner import run_prep

    out = work / f"prep_{engine}_w{workers}_t{threads}"
    overrides = [f"input={data}", f"output_dir={out}", f"workers={workers}", "progress=false", f"engine={engine}"]
    overrides += [f"threads_per_worker={threads}"] if threads else []
    overrides += [f"encoders.{m}.model={p}" for m, p in encoders.items()]
    cfg = load_config(PrepConfig, Path(__file__).resolve().parents[1] / "configs/prep/demo.yaml", overrides)
    report = run_prep(cfg)
    assert report.counts["failed"] == 0, report.summary()
    t = report.throughput()
    return {
        "engine": engine,
        "workers": workers,
        "threads_per_worker": threads or "auto",
        "clips": report.processed(),
        "elapsed_s": round(report.elapsed_s, 3),
        "clips_per_s": round(t["clips_per_s"], 3),
        "frames_per_s": round(t["frames_per_s"], 2),
        "steady_clips_per_s": round(t["steady_clips_per_s"], 3),
        "steady_frames_per_s": round(t["steady_clips_per_s"] * report.frames_decoded / report.processed(), 2),
    }


def bench_ray(data: Path, encoders: dict[str, str], work: Path, cpus: int) -> dict | None:
    """The Ray engine on a local Ray instance of `cpus` CPUs (its start-up timed apart from the run)."""
    try:
        import ray
    except ImportError:
        return None
    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - start
    try:
        return bench_workers(data, encoders, work, 1, engine="ray") | {"ray_cpus": cpus, "ray_init_s": round(started, 2)}
    finally:
        ray.shutdown()


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32, help="synthetic clips (split over 4 classes)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.encoders.tiny import build_tiny_encoders

    with tempfile.TemporaryDirectory(prefix="bench_prep_") as tmp:
        work = Path(tmp)
        samples = generate_dataset(work / "data", SyntheticConfig(num_per_class=max(1, args.clips // 4), seed=1))
        encoders = build_tiny_encoders(work / "encoders")
        one = bench_workers(work / "data/samples.jsonl", encoders, work, 1)
        one_core = bench_workers(work / "data/samples.jsonl", encoders, work, 1, threads=1)
        two = bench_workers(work / "data/samples.jsonl", encoders, work, 2)
        on_ray = bench_ray(work / "data/samples.jsonl", encoders, work, 2)
        clips = [work / "data" / s.media.video for s in samples]
        decode = bench_decode(clips, 8, args.repeats)
    result = {
        "benchmark": "prep",
        "workers_1": one,
        "workers_1_one_thread": one_core,
        "workers_2": two,
        "speedup_2_vs_1": round(two["steady_clips_per_s"] / one["steady_clips_per_s"], 3),
        "speedup_2_vs_1_one_thread": round(two["steady_clips_per_s"] / one_core["steady_clips_per_s"], 3),
        "speedup_2_vs_1_end_to_end": round(two["clips_per_s"] / one["clips_per_s"], 3),
        "decode": decode,
        "goals": {"speedup_2_vs_1": ">= 1.7", "decode_overhead_ratio": "<= 1.25", "ray_vs_local_2_workers": ">= 0.9"},
        "cpu_count": __import__("os").cpu_count(),
    }
    if on_ray is not None:
        # Same clips and the same 2 cores: the Ray engine's overhead over the local engine's best on them.
        result["ray_2_cpus"] = on_ray
        # End to end (actor start-up included, ray.init not): Ray's in-order results arrive in bursts, which
        # inflates its first-to-last-completion "steady" rate.
        result["ray_vs_local_2_workers"] = round(on_ray["clips_per_s"] / two["clips_per_s"], 3)
        result["ray_vs_local_2_workers_steady"] = round(on_ray["steady_clips_per_s"] / two["steady_clips_per_s"], 3)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
