"""The `grpo` section of scripts/bench_train.py: rollout tokens/s and optimiser steps/s of stage grpo on the tiny twin,
hf rollouts against vLLM rollouts, in one run.

configs/recipes/tiny_grpo.yaml from a briefly supervised tiny model (the start is not timed), run once per rollout
backend from the same start: `hf` (EmotionLM.generate, transformers generate on inputs_embeds) and, where vllm
imports, `vllm` (the same prompt embeddings sent to an in-process vLLM engine, the GRPO LoRA synced each step:
emoreason.train.vllm_rollouts). The vLLM engine's start is timed apart (engine_start_s) and not counted in a step.

- rollout_tokens_per_s: completion tokens (up to and including each one's end-of-sequence token) over the
  wall time spent inside `_generate_single_turn` (for vllm: the LoRA sync, the prompt embeddings and vLLM's
  generation), warm-up steps excluded;
- steps_per_s: optimiser steps over the intervals between step ends after warm-up (rollouts, rewards,
  log-probs, backward and the optimiser step, all of it);
- rollout_fraction: the share of a step's time spent generating;
- vllm_over_hf: the vllm run's figures over the hf run's (same process, same load).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

RECIPE = str(Path(__file__).resolve().parents[1] / "configs/recipes/tiny_grpo.yaml")


def _timed_run(cfg, warmup: int) -> dict:
    from transformers import TrainerCallback

    from emoreason.train.grpo_run import setup_grpo, train_grpo

    start = time.perf_counter()
    run = setup_grpo(cfg)
    setup_s = time.perf_counter() - start
    trainer = run.trainer
    rollouts: list[tuple[int, float]] = []  # (completion tokens, seconds) per rollout
    step_ends: list[float] = []
    original = trainer._generate_single_turn

    def timed(*args, **kwargs):
        start = time.perf_counter()
        completions, extra = original(*args, **kwargs)
        rollouts.append((sum(len(c) for c in completions), time.perf_counter() - start))
        return completions, extra

    trainer._generate_single_turn = timed

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    trainer.add_callback(StepClock())
    try:
        train_grpo(run)
    finally:
        if trainer.rollouts is not None:
            trainer.rollouts.close()
    timed_rollouts = rollouts[warmup:]
    intervals = [b - a for a, b in zip(step_ends[warmup:], step_ends[warmup + 1:])]
    tokens = sum(n for n, _ in timed_rollouts)
    seconds = sum(s for _, s in timed_rollouts)
    return {
        "rollout_backend": cfg.grpo.rollout_backend,
        "setup_s": round(setup_s, 1),  # with vllm: mostly the engine's start
        "timed_steps": len(intervals),
        "rollout_tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "mean_completion_tokens": round(tokens / max(1, len(timed_rollouts) * cfg.optim.batch_size), 2),
        "steps_per_s": round(1 / statistics.median(intervals), 3) if intervals else None,
        "rollout_fraction": round(seconds / sum(intervals), 3) if intervals else None,
    }


def _vllm_problem() -> str | None:
    try:
        import vllm  # noqa: F401
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def grpo_section(data, work: Path, steps: int, warmup: int, supervised_steps: int = 30) -> dict:
    from emoreason.demo import train_tiny
    from emoreason.train.config import load_train_config

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the tiny model needs a few MiB
    init = train_tiny(data, work / "grpo_sft", [f"optim.max_steps={supervised_steps}", "optim.save_steps=1000", "optim.overwrite=true"])

    def cfg(backend: str):
        return load_train_config(RECIPE, [f"init_from={init}", f"data.train={data.train}", f"optim.output_dir={work / f'grpo_{backend}'}",
                                          f"optim.max_steps={steps + warmup}", "optim.save_steps=100000", "optim.overwrite=true",
                                          f"grpo.rollout_backend={backend}"])

    hf_cfg = cfg("hf")
    g = hf_cfg.grpo
    out = {
        "recipe": "configs/recipes/tiny_grpo.yaml",
        "completions_per_step": hf_cfg.optim.batch_size * hf_cfg.optim.grad_accum,
        "num_generations": g.num_generations,
        "max_completion_length": g.max_completion_length,
        "hf": _timed_run(hf_cfg, warmup),
    }
    problem = _vllm_problem()
    if problem is not None:
        out["vllm"] = f"not measured: vllm does not import here ({problem})"
        return out
    out["vllm"] = _timed_run(cfg("vllm"), warmup)
    out["vllm_over_hf"] = {
        key: round(out["vllm"][key] / out["hf"][key], 2) if out["vllm"][key] and out["hf"][key] else None
        for key in ("rollout_tokens_per_s", "steps_per_s")
    }
    out["load_average"] = [round(x, 1) for x in os.getloadavg()]
    return out
