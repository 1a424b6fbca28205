"""Shared by the vLLM-rollout GRPO tests of both model kinds."""

from __future__ import annotations


def greedy_completions(trainer, sample_ids: list[str]) -> list[list[int]]:
    """The trainer's own rollout path (prompt encoding, media, sampling, eos cut) at top_k 1: greedy on either backend."""
    trainer.top_k, trainer.generation_config.top_k = 1, 1
    # TRL reads each row's prompt text too (the dataset's column, emoreason.train.grpo_data.prompt_dataset)
    rows = [{"prompt": trainer.store.turns(i)[-1].content, "sample_id": i} for i in sample_ids]
    out = trainer._generate_and_score_completions(rows)
    return [ids[mask.bool()].tolist() for ids, mask in zip(out["completion_ids"], out["completion_mask"])]
