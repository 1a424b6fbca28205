"""The `grpo` section of scripts/bench_train.py: rollout tokens/s and optimiser steps/s of stage grpo on the tiny twin.

configs/recipes/tiny_grpo.yaml from a briefly supervised tiny model (the start is not timed). Rollouts go through
EmotionLM.generate (HF generate on inputs_embeds), the only rollout backend (docs/grpo.md: TRL's vLLM path sends
token ids, not the prompt embeddings the media need), so there is no vLLM figure to set beside it.

- rollout_tokens_per_s: completion tokens (up to and including each one's end-of-sequence token) over the
  wall time spent inside `_generate_single_turn`, warm-up steps excluded;
- steps_per_s: optimiser steps over the intervals between step ends after warm-up (rollouts, rewards,
  log-probs, backward and the optimiser step, all of it);
- rollout_fraction: the share of a step's time spent generating.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

RECIPE = str(Path(__file__).resolve().parents[1] / "configs/recipes/tiny_grpo.yaml")


def grpo_section(data, work: Path, steps: int, warmup: int, supervised_steps: int = 30) -> dict:
    from transformers import TrainerCallback

    from emoreason.demo import train_tiny
    from emoreason.train.config import load_train_config
    from emoreason.train.grpo_run import setup_grpo, train_grpo

    init = train_tiny(data, work / "grpo_sft", [f"optim.max_steps={supervised_steps}", "optim.save_steps=1000", "optim.overwrite=true"])
    cfg = load_train_config(RECIPE, [f"init_from={init}", f"data.train={data.train}", f"optim.output_dir={work / 'grpo'}",
                                     f"optim.max_steps={steps + warmup}", "optim.save_steps=100000", "optim.overwrite=true"])
    run = setup_grpo(cfg)
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
    train_grpo(run)
    timed_rollouts = rollouts[warmup:]
    intervals = [b - a for a, b in zip(step_ends[warmup:], step_ends[warmup + 1:])]
    tokens = sum(n for n, _ in timed_rollouts)
    seconds = sum(s for _, s in timed_rollouts)
    g = cfg.grpo
    return {
        "recipe": "configs/recipes/tiny_grpo.yaml",
        "completions_per_step": cfg.optim.batch_size * cfg.optim.grad_accum,
        "num_generations": g.num_generations,
        "max_completion_length": g.max_completion_length,
        "timed_steps": len(intervals),
        "rollout_backend": "hf",
        "rollout_tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "mean_completion_tokens": round(tokens / max(1, len(timed_rollouts) * cfg.optim.batch_size), 2),
        "steps_per_s": round(1 / statistics.median(intervals), 3) if intervals else None,
        "rollout_fraction": round(seconds / sum(intervals), 3) if intervals else None,
        "vllm": "not measured: no vLLM rollout backend for the projector model (docs/grpo.md, Rollouts)",
    }
