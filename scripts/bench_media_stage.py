"""Benchmark serving's media stage alone: clips/s of live features for concurrent requests, by pool kind and size.

    .venv/bin/python scripts/bench_media_stage.py [--clips 16] [--concurrency 16]

Prints one JSON object (also a section of scripts/bench_serve.py). The same synthetic clips and tiny
encoders (configs/prep/demo.yaml's settings) in one run: `concurrency` caller threads each featurize a
clip at a time until every clip is done once (memo off), through
- `serial`: `Featurizer.featurize` behind one lock (the engines before the media stage);
- the stage with 1 and 2 decode threads, and with 2 spawned decode processes (batched encoders in all).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def run(featurize, files: list[dict], concurrency: int) -> float:
    """clips/s of `concurrency` threads featurizing each of `files` once: distinct bytes, so the stage's sharing of
    identical in-flight media saves nothing (its memo is off too; bench_serve's live_resent measures that)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(featurize, files))
    return len(files) / (time.perf_counter() - start)


def media_stage_section(num_clips: int = 16, concurrency: int = 16) -> dict:
    from emoreason.config import load_config
    from emoreason.data_prep.prep_config import PrepConfig
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.encoders.tiny import build_tiny_encoders
    from emoreason.features.featurizer import Featurizer
    from emoreason.serving.media_stage import MediaStage, MediaStageConfig

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="bench_media_stage_") as tmp:
        work = Path(tmp)
        samples = generate_dataset(work / "data", SyntheticConfig(num_per_class=max(1, num_clips // 4), seed=4))
        files = [{"video": work / "data" / s.media.video} for s in samples]
        fill = [f"input={work / 'data/samples.jsonl'}", f"output_dir={work / 'prep'}"]
        fill += [f"encoders.{m}.model={p}" for m, p in build_tiny_encoders(work / "encoders").items()]
        cfg = load_config(PrepConfig, root / "configs/prep/demo.yaml", fill)
        featurizer = Featurizer(cfg.encoders, cfg.media)
        featurizer.load_all()
        featurizer.featurize(files[0])  # warm-up
        lock = threading.Lock()

        def serial(f):
            with lock:
                return featurizer.featurize(f)

        out = {"clips": len(files), "concurrency": concurrency, "clips_per_s": {"serial": round(run(serial, files, concurrency), 2)}}
        for name, stage_cfg in (("threads_1", MediaStageConfig(workers=1, memo_mb=0)),
                                ("threads_2", MediaStageConfig(workers=2, memo_mb=0)),
                                ("processes_2", MediaStageConfig(workers=2, pool="process", memo_mb=0))):
            stage = MediaStage(featurizer, stage_cfg)
            try:
                stage.featurize(files[0])
                out["clips_per_s"][name] = round(run(stage.featurize, files, concurrency), 2)
            finally:
                stage.close()
        rates = out["clips_per_s"]
        out["over_serial"] = {k: round(v / rates["serial"], 2) for k, v in rates.items() if k != "serial"}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    print(json.dumps(media_stage_section(args.clips, args.concurrency), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
