"""The `native` sections of bench_train.py and bench_serve.py: the tiny native twin against the projector model on
the same synthetic clips, in the same run.

    .venv/bin/python scripts/bench_native.py train    # train samples/s, native vs projector (HF Trainer, same steps)
    .venv/bin/python scripts/bench_native.py serve    # requests/s at c=1 and c=32: hf native vs projector, vllm vs hf native

Prints one JSON object. The native model's vllm backend (vLLM's own Qwen2.5-VL model file, frames as multi_modal_data)
runs where torchvision imports (scripts/fix_cpu_torch_stack.py makes it import beside a CPU torch); elsewhere it is
reported with the reason it cannot start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _trained_steps_per_s(log_history: list[dict]) -> dict:
    summary = next(h for h in log_history if "train_runtime" in h)
    return {"train_runtime_s": round(summary["train_runtime"], 2), "samples_per_s": round(summary["train_samples_per_second"], 3)}


def native_train_section(work: Path, num_per_class: int, steps: int, batch_size: int) -> dict:
    """Same clips, same steps and batch: the native twin (video through its vision tower, every step decoding
    from the input cache) vs the projector model (cached prep features)."""
    from emoreason.demo import prepare_tiny_data
    from emoreason.demo_native import prepare_native_data
    from emoreason.train.native_config import load_native_train_config
    from emoreason.train.native_run import setup

    common = [f"optim.max_steps={steps}", f"optim.batch_size={batch_size}", "optim.save_steps=100000", "optim.logging_steps=1000"]
    native_data = prepare_native_data(work / "native", num_per_class)
    cfg = load_native_train_config("configs/train/tiny_native.yaml", native_data.train_overrides(work / "native_run") + common)
    start = time.perf_counter()
    run = setup(cfg)  # encodes every sample once (fills the input cache)
    setup_s = time.perf_counter() - start
    run.trainer.train()
    native = _trained_steps_per_s(run.trainer.state.log_history) | {"setup_and_first_encode_s": round(setup_s, 1)}

    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup as projector_setup

    data = prepare_tiny_data(work / "projector", num_per_class=num_per_class, seed=0)
    pcfg = load_train_config("configs/train/tiny_instruct.yaml", data.train_overrides(work / "projector_run") + common)
    prun = projector_setup(pcfg)
    prun.trainer.train()
    projector = _trained_steps_per_s(prun.trainer.state.log_history)
    return {"steps": steps, "batch_size": batch_size, "native_qwen2_5_vl_twin": native, "projector_tiny": projector,
            "native_over_projector_samples_per_s": round(native["samples_per_s"] / projector["samples_per_s"], 3)}


def native_serve_section(work: Path, num_per_class: int, concurrency: list[int], max_tokens: int, requests: int) -> dict:
    from bench_serve import run_load

    from emoreason.demo import prepare_tiny_data, train_tiny
    from emoreason.demo_native import prepare_native_data, train_native
    from emoreason.labels import RECOGNITION_PROMPT
    from emoreason.serving.backends import BackendError, load_engine
    from emoreason.serving.engine import GenerationRequest, MediaInput
    from emoreason.serving.export import export_model

    native_data = prepare_native_data(work / "native", num_per_class)
    native_model = train_native(native_data, work / "native_run", ["optim.max_steps=4", "optim.save_steps=100000"])
    native_export = export_model(native_model, work / "native_export")
    data = prepare_tiny_data(work / "projector", num_per_class=num_per_class, seed=0)
    projector_export = export_model(train_tiny(data, work / "projector_run", ["optim.max_steps=4", "optim.save_steps=100000"]),
                                    work / "projector_export")
    clips = sorted((native_data.train.parent / "clips").glob("*.mp4"))[:16]
    question = RECOGNITION_PROMPT.format(labels=", ".join(native_data.labels))
    reqs = [GenerationRequest([{"role": "user", "content": question}], [MediaInput("video", c)], max_tokens=max_tokens) for c in clips]
    out: dict = {"clips": len(clips), "max_tokens": max_tokens, "cpu_count": os.cpu_count()}
    for name, model_dir in (("native_qwen2_5_vl_twin", native_export), ("projector_tiny", projector_export)):
        engine = load_engine("hf", model_dir, max_batch_size=max(concurrency))

        def call(i: int, engine=engine):
            (c,) = engine.generate([reqs[i % len(reqs)]])
            return c.completion_tokens, c.media_seconds, c.llm_seconds

        call(0)
        out[name] = {"hf": {f"c{c}": run_load(call, requests or max(32, 4 * c), c) for c in concurrency}}
        del engine, call
        if name.startswith("native"):
            out[name]["vllm"] = _native_vllm_load(load_engine, BackendError, model_dir, reqs, concurrency, requests, run_load)
    top = f"c{max(concurrency)}"
    vllm = out["native_qwen2_5_vl_twin"]["vllm"]
    if top in vllm:
        out["native_vllm_over_hf_requests_" + top] = round(
            vllm[top]["requests_per_s"] / out["native_qwen2_5_vl_twin"]["hf"][top]["requests_per_s"], 3)
    out["native_over_projector_hf_requests_" + top] = round(
        out["native_qwen2_5_vl_twin"]["hf"][top]["requests_per_s"] / out["projector_tiny"]["hf"][top]["requests_per_s"], 3)
    return out


def _native_vllm_load(load_engine, backend_error, model_dir, reqs, concurrency, requests, run_load) -> dict:
    """The same requests through the vllm backend at each concurrency, or why it cannot start here."""
    try:
        start = time.perf_counter()
        engine = load_engine("vllm", model_dir, max_batch_size=max(concurrency))
    except backend_error as exc:
        return {"unavailable": str(exc)}
    out: dict = {"engine_start_s": round(time.perf_counter() - start, 1)}
    try:
        def call(i: int):
            (c,) = engine.generate([reqs[i % len(reqs)]])
            return c.completion_tokens, c.media_seconds, c.llm_seconds

        call(0)
        out |= {f"c{c}": run_load(call, requests or max(32, 4 * c), c) for c in concurrency}
    finally:
        engine.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=("train", "serve"))
    parser.add_argument("--num-per-class", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    stdout = sys.stdout
    with tempfile.TemporaryDirectory(prefix="bench_native_") as tmp, contextlib.redirect_stdout(sys.stderr):
        work = Path(args.workdir or tmp)
        if args.section == "train":
            result = native_train_section(work, args.num_per_class, args.steps, args.batch_size)
        else:
            result = native_serve_section(work, args.num_per_class, args.concurrency, args.max_tokens, args.requests)
    print(json.dumps({"native": result}, indent=2), file=stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
