"""GRPO rollouts through vLLM (grpo.rollout_backend: vllm) on the native kind's tiny Qwen2.5-VL twin: two GRPO steps
with the rollouts sampled by vLLM's own Qwen2.5-VL model file and media processing (the sample's decoded frames as
multi_modal_data); after them, the engine's greedy completions under the synced LoRA equal the backbone's own greedy
completions of the same trained policy, and differ from the frozen base's. One vLLM engine start in this module."""

from __future__ import annotations

import os
import time

import pytest
from grpo_rollout_helpers import ensure_lora_moved, synced_and_base_completions

CONFIG = "configs/train/tiny_native_grpo.yaml"

pytestmark = pytest.mark.slow


def test_native_vllm_rollouts_train_and_follow_the_synced_lora(tmp_path):
    pytest.importorskip("vllm", reason="vllm not installed (the serve / serve-cpu extra)")
    from emoreason.demo_native import prepare_native_data, train_native
    from emoreason.serving.native_vllm import torchvision_problem
    from emoreason.train.kinds import load_any_train_config
    from emoreason.train.native_grpo_run import setup_native_grpo, train_native_grpo
    from emoreason.train.vllm_rollouts import VLLMRollouts

    if torchvision_problem() is not None:
        pytest.skip(f"torchvision does not import here ({torchvision_problem()}): vLLM's native model files need it")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the twin needs a few MiB
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = prepare_native_data(tmp_path / "ws", num_per_class=2, seed=0)
    init = train_native(data, tmp_path / "sft" / "run", ["optim.max_steps=6", "optim.batch_size=4", "optim.learning_rate=0.01"])
    cfg = load_any_train_config(CONFIG, [f"init_from={init}", f"data.train={data.train}", f"optim.output_dir={tmp_path / 'grpo'}",
                                         "optim.max_steps=2", "optim.learning_rate=0.05", "grpo.rollout_backend=vllm"])
    start = time.perf_counter()
    run = setup_native_grpo(cfg)
    trainer = run.trainer
    assert isinstance(trainer.rollouts, VLLMRollouts)
    print(f"\nvLLM rollout engine (native) started in {time.perf_counter() - start:.0f} s")
    try:
        lora_before = {n: p.detach().clone() for n, p in run.model.named_parameters() if p.requires_grad}
        train_native_grpo(run)
        logs = [h for h in trainer.state.log_history if "reward" in h]
        print(f"native vllm-rollout GRPO logs: {[{k: h[k] for k in ('step', 'rewards/label/mean', 'reward_std')} for h in logs]}")
        assert [h["step"] for h in logs] == [1, 2]
        ensure_lora_moved(run.model, lora_before)

        ids = sorted(run.store.samples)[:8]
        got = synced_and_base_completions(trainer, ids, run.model.backbone.disable_adapter)
        synced, hf, base_hf, base_vllm = got["synced"], got["hf"], got["base_hf"], got["base_vllm"]
        changed = sum(a != b for a, b in zip(hf, base_hf))
        print(f"greedy completions of {len(ids)} clips: vLLM (synced) == hf: {synced == hf}; the trained policy differs "
              f"from the base on {changed}")
        pads = set(trainer._suppressed)
        assert not any(t in pads for row in synced + base_vllm for t in row), "vLLM sampled a media pad token"
        assert synced == hf
        assert base_vllm == base_hf
        assert changed > 0, "the trained LoRA changes no greedy completion: the sync would go unseen"
    finally:
        trainer.rollouts.close()
