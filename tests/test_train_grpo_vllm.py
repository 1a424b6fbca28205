"""GRPO rollouts through vLLM (grpo.rollout_backend: vllm) on the projector model's tiny twin: two GRPO steps with the
rollouts sampled by an in-process vLLM engine; after them, the engine's greedy completions (the policy's LoRA synced)
equal the hf path's greedy completions of the same trained policy, row for row, and differ from the frozen base's.
One vLLM engine start in this module. The bad combinations are refused before any weights load."""

from __future__ import annotations

import json
import os
import time

import pytest
from grpo_rollout_helpers import ensure_lora_moved, synced_and_base_completions

from emoreason.config import ConfigError
from emoreason.demo import GRPO_CONFIG, train_tiny

ROOT_OVERRIDES = ["grpo.rollout_backend=vllm", "optim.max_steps=2", "optim.batch_size=16", "optim.learning_rate=0.05"]


def _cfg(tiny_data, init, out, *extra):
    from emoreason.train.config import load_train_config

    return load_train_config(GRPO_CONFIG, [f"init_from={init}", f"data.train={tiny_data.train}", f"optim.output_dir={out}", *extra])


@pytest.mark.slow
def test_vllm_rollouts_train_and_follow_the_synced_lora(tiny_data, tmp_path):
    pytest.importorskip("vllm", reason="vllm not installed (the serve / serve-cpu extra)")
    from emoreason.train.grpo_run import setup_grpo, train_grpo
    from emoreason.train.vllm_rollouts import VLLMRollouts

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; the tiny model needs a few MiB
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    init = train_tiny(tiny_data, tmp_path / "sft", ["optim.max_steps=30", "optim.save_steps=1000"])
    start = time.perf_counter()
    run = setup_grpo(_cfg(tiny_data, init, tmp_path / "grpo", *ROOT_OVERRIDES))
    trainer = run.trainer
    assert isinstance(trainer.rollouts, VLLMRollouts)
    print(f"\nvLLM rollout engine started in {time.perf_counter() - start:.0f} s")
    try:
        lora_before = {n: p.detach().clone() for n, p in run.model.named_parameters() if p.requires_grad}
        final = train_grpo(run)
        logs = [h for h in trainer.state.log_history if "reward" in h]
        print(f"vllm-rollout GRPO logs: {[{k: h[k] for k in ('step', 'rewards/label/mean', 'reward_std')} for h in logs]}")
        assert [h["step"] for h in logs] == [1, 2] and all(0.0 <= h["rewards/label/mean"] <= 1.0 for h in logs)
        ensure_lora_moved(run.model, lora_before)
        assert (final / "adapter").is_dir()
        # Only the adapter synced last is kept on disk (step 1's, used for step 2's rollouts).
        assert sorted(p.name for p in (tmp_path / "grpo" / "rollout_adapters").iterdir()) == ["step-1"]

        ids = sorted(run.store.samples)[:16]
        got = synced_and_base_completions(trainer, ids, run.model.llm.disable_adapter)
        assert sorted(p.name for p in (tmp_path / "grpo" / "rollout_adapters").iterdir()) == ["step-2"]
        synced, hf, base_hf, base_vllm = got["synced"], got["hf"], got["base_hf"], got["base_vllm"]
        changed = sum(a != b for a, b in zip(hf, base_hf))
        print(f"greedy completions of {len(ids)} prompts: vLLM (synced) == hf: {synced == hf}; "
              f"the trained policy differs from the base on {changed}")
        assert synced == hf
        assert base_vllm == base_hf
        assert changed > 0, "the trained LoRA changes no greedy completion: the sync would go unseen"
    finally:
        trainer.rollouts.close()


def _run_cfg(deepspeed=None, kind="projector", modalities=None, faces=None, backend="vllm"):
    """What check_rollout_backend reads of a train config, without a model directory to load."""
    from types import SimpleNamespace

    from emoreason.train.grpo_config import GRPOSettings

    return SimpleNamespace(grpo=GRPOSettings(rollout_backend=backend), optim=SimpleNamespace(deepspeed=deepspeed),
                           model=SimpleNamespace(kind=kind, modalities=modalities, faces=faces))


def test_vllm_rollout_backend_refusals_name_the_key(tmp_path, monkeypatch):
    import sys

    from emoreason.serving import native_vllm
    from emoreason.train.grpo_config import GRPOSettings
    from emoreason.train.vllm_rollouts import check_rollout_backend

    with pytest.raises(ConfigError, match=r"key 'rollout_backend'.*one of \['hf', 'vllm'\]"):
        GRPOSettings(rollout_backend="trl")
    check_rollout_backend(_run_cfg(backend="hf"), world_size=2)  # hf: nothing to refuse
    with pytest.raises(ConfigError, match=r"grpo.rollout_backend.*one in-process engine.*2 ranks"):
        check_rollout_backend(_run_cfg(), world_size=2)
    zero3 = tmp_path / "zero3.json"
    zero3.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    with pytest.raises(ConfigError, match=r"grpo.rollout_backend.*ZeRO-3"):
        check_rollout_backend(_run_cfg(deepspeed=str(zero3)), world_size=1)
    zero2 = tmp_path / "zero2.json"
    zero2.write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    check_rollout_backend(_run_cfg(deepspeed=str(zero2)), world_size=1)
    with pytest.raises(ConfigError, match=r"grpo.rollout_backend.*face"):
        check_rollout_backend(_run_cfg(kind="native", modalities=["video", "face"]), world_size=1)
    monkeypatch.setattr(native_vllm, "torchvision_problem", lambda: "RuntimeError: operator torchvision::nms does not exist")
    with pytest.raises(ConfigError, match=r"grpo.rollout_backend.*torchvision does not import here.*fix_cpu_torch_stack"):
        check_rollout_backend(_run_cfg(kind="native"), world_size=1)
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(ConfigError, match=r"grpo.rollout_backend.*vllm, which does not import here.*rollout_backend: hf"):
        check_rollout_backend(_run_cfg(), world_size=1)
