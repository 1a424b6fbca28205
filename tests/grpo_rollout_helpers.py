"""Shared by the vLLM-rollout GRPO tests of both model kinds."""

from __future__ import annotations


def greedy_completions(trainer, sample_ids: list[str]) -> list[list[int]]:
    """The trainer's own rollout path (prompt encoding, media, sampling, eos cut) at top_k 1: greedy on either backend."""
    trainer.top_k, trainer.generation_config.top_k = 1, 1
    # TRL reads each row's prompt text too (the dataset's column, emoreason.train.grpo_data.prompt_dataset)
    rows = [{"prompt": trainer.store.turns(i)[-1].content, "sample_id": i} for i in sample_ids]
    out = trainer._generate_and_score_completions(rows)
    return [ids[mask.bool()].tolist() for ids, mask in zip(out["completion_ids"], out["completion_mask"])]


def ensure_lora_moved(model, lora_before: dict) -> bool:
    """Whether the GRPO steps moved the LoRA; if not, give its B matrices a seeded change.

    Two steps in which every group scored alike (zero advantages; it happens on some machines' sampling) leave the
    LoRA as it was, and then a sync would go unseen. The change keeps the sync check meaningful: vLLM must follow it.
    """
    import torch

    moved = any(not torch.equal(p, lora_before[n]) for n, p in model.named_parameters() if n in lora_before)
    print(f"the GRPO steps moved the LoRA: {moved}")
    if not moved:
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if param.requires_grad and "lora_B" in name:
                    param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * 0.5)
    return moved


def synced_and_base_completions(trainer, ids: list[str], disable_adapter) -> dict[str, list[list[int]]]:
    """Greedy completions of `ids`: vLLM after syncing the policy, hf with and without the LoRA, vLLM's frozen base."""
    synced = greedy_completions(trainer, ids)  # syncs the policy at the current step first
    rollouts, trainer.rollouts = trainer.rollouts, None
    hf = greedy_completions(trainer, ids)
    with disable_adapter():
        base_hf = greedy_completions(trainer, ids)
    trainer.rollouts = rollouts
    rollouts._lora = None  # the frozen base in vLLM: what the policy was before any sync
    base_vllm = greedy_completions(trainer, ids)
    return {"synced": synced, "hf": hf, "base_hf": base_hf, "base_vllm": base_vllm}
