"""GRPO rollouts through vLLM (`grpo.rollout_backend: vllm`): one in-process engine per run, the LoRA synced each step.

The engine loads the run's frozen base (`<output_dir>/init`, the supervised model with its LoRA merged), which
is what the policy is with its GRPO LoRA disabled, with vLLM's LoRA support on. The GRPO LoRA is the only
thing stage grpo trains, so syncing the policy is saving that adapter (peft `save_pretrained`, safetensors)
to a folder of its own and naming it in a new `LoRARequest` (a new int id: vLLM caches adapters by id, so an
id reused for changed weights would keep the old ones). TRL's colocate mode instead merges the adapter into
the LLM and pushes every weight into vLLM's model each step (`load_weights`); ours moves only the adapter.

Sampling follows the hf path's settings (TRL's temperature, top_p, top_k, min_p, repetition_penalty,
max_completion_length; one request per completion row, as the hf path generates one row per completion),
and each completion is kept up to and including its first end-of-sequence token (completions_up_to_eos).
vLLM's sampler has its own random stream: sampled completions equal the hf path's only in distribution;
greedy ones (top_k 1) are the same tokens.

One process only (refused with more than one rank, and under ZeRO-3): every rank would start its own engine.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from emoreason.config import ConfigError

ADAPTERS_DIR = "rollout_adapters"


def completions_up_to_eos(rows: Sequence[Sequence[int]], eos_ids: Sequence[int]) -> list[list[int]]:
    """Each generated row cut after its first end-of-sequence token (the whole row when it has none), as TRL keeps them."""
    eos = set(eos_ids)
    completions = []
    for row in rows:
        row = list(row)
        end = next((k for k, t in enumerate(row) if t in eos), len(row) - 1)
        completions.append(row[: end + 1])
    return completions


def _zero_stage(deepspeed: str | None) -> int:
    if deepspeed is None:
        return 0
    return int(json.loads(Path(deepspeed).read_text()).get("zero_optimization", {}).get("stage", 0))


def check_rollout_backend(cfg, world_size: int) -> None:
    """ConfigError, before any weights load, for a vllm backend this run cannot have."""
    if cfg.grpo.rollout_backend != "vllm":
        return
    key = "key 'grpo.rollout_backend': vllm"
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # a broken install fails with more than ImportError
        raise ConfigError(f"{key} rollouts need vllm, which does not import here ({type(exc).__name__}: {exc}); "
                          "pip install -e .[serve] (CUDA) or .[serve-cpu], or use rollout_backend: hf") from None
    if world_size > 1:
        raise ConfigError(f"{key} runs one in-process engine, on one rank; this run has {world_size} ranks "
                          "(use rollout_backend: hf with torchrun)")
    if _zero_stage(cfg.optim.deepspeed) == 3:
        raise ConfigError(f"{key} syncs the LoRA from whole parameters; optim.deepspeed {cfg.optim.deepspeed} is ZeRO-3 "
                          "(use ZeRO-2 or rollout_backend: hf)")
    if getattr(cfg.model, "kind", None) == "native":
        from emoreason.serving.native_vllm import torchvision_problem

        modalities = cfg.model.modalities
        if "face" in (modalities or []) or (modalities is None and cfg.model.faces is not None):
            raise ConfigError(f"{key} takes the backbone's own media (video, image, audio); model.modalities has face "
                              "crops, which vLLM's processing does not make (use rollout_backend: hf)")
        problem = torchvision_problem()
        if problem is not None:
            raise ConfigError(f"{key} runs vLLM's own model file for the native backbone, which imports torchvision; "
                              f"torchvision does not import here ({problem}); run scripts/fix_cpu_torch_stack.py on a "
                              "CPU-only torch, or use rollout_backend: hf")


def _device(cfg) -> str:
    import torch

    return "cuda" if torch.cuda.is_available() and not cfg.optim.use_cpu else "cpu"


def _run_options(cfg, device: str, max_length: int) -> dict:
    options = {"max_model_len": max_length + cfg.grpo.max_completion_length, "disable_log_stats": True}
    if device == "cuda":
        options["gpu_memory_utilization"] = 0.3  # the policy, its optimiser and activations share the GPU (TRL's default)
    return options


def projector_rollouts(cfg, model_config) -> VLLMRollouts | None:
    """The engine for a projector policy (model_config: the policy's, whose llm is the run's merged init/llm), or None for hf."""
    if cfg.grpo.rollout_backend != "vllm":
        return None
    from emoreason.serving.vllm_engine import default_engine_options

    device = _device(cfg)
    options = default_engine_options(device, cfg.optim.batch_size * cfg.optim.grad_accum, model_config.dtype)
    return VLLMRollouts(model_config.llm, Path(cfg.optim.output_dir) / ADAPTERS_DIR, cfg.grpo.lora.r,
                        options | _run_options(cfg, device, model_config.max_length), cfg.optim.seed)


def native_rollouts(cfg, init_dir: str | Path, model_cfg, processor) -> VLLMRollouts | None:
    """The engine for a native policy on the run's init/ (model_cfg: its NativeModelConfig), or None for hf."""
    if cfg.grpo.rollout_backend != "vllm":
        return None
    from emoreason.serving.native_vllm import native_engine_args

    device = _device(cfg)
    options = native_engine_args(model_cfg, processor, device, cfg.optim.batch_size * cfg.optim.grad_accum)
    return VLLMRollouts(init_dir, Path(cfg.optim.output_dir) / ADAPTERS_DIR, cfg.grpo.lora.r,
                        options | _run_options(cfg, device, model_cfg.max_length), cfg.optim.seed)


def vllm_lora_rank(r: int) -> int:
    """The smallest max_lora_rank vLLM accepts that holds a LoRA of rank r."""
    from vllm.config.lora import MaxLoRARanks

    ranks = sorted(int(x) for x in MaxLoRARanks.__args__)
    fitting = [x for x in ranks if x >= r]
    if not fitting:
        raise ConfigError(f"key 'grpo.lora.r': {r} is over vLLM's largest LoRA rank {ranks[-1]} (rollout_backend: vllm)")
    return fitting[0]


class VLLMRollouts:
    """An in-process vLLM engine on the run's frozen base; `complete` syncs the policy's LoRA when it moved, then samples."""

    def __init__(self, base_dir: str | Path, adapters_dir: str | Path, lora_rank: int, engine_options: dict, seed: int):
        """engine_options: the serving backend's engine arguments for this model kind (vllm_engine / native_vllm)."""
        from vllm import LLM

        self.adapters_dir = Path(adapters_dir)
        self._synced_step: int | None = None
        self._lora = None
        self._next_id = 1
        self.llm = LLM(model=str(base_dir), enable_lora=True, max_lora_rank=vllm_lora_rank(lora_rank), max_loras=1,
                       seed=seed, **engine_options)

    def sync(self, peft_model, step: int) -> None:
        """The policy's LoRA as this step's adapter (skipped when it is already the one synced at this step)."""
        if step == self._synced_step:
            return
        from vllm.lora.request import LoRARequest

        folder = self.adapters_dir / f"step-{step}"
        if folder.exists():
            shutil.rmtree(folder)
        peft_model.save_pretrained(str(folder), safe_serialization=True)
        previous, self._lora = self._lora, LoRARequest(f"grpo-step-{step}", self._next_id, str(folder))
        self._next_id += 1
        self._synced_step = step
        if previous is not None:
            self.llm.llm_engine.remove_lora(previous.lora_int_id)
            if Path(previous.lora_path) != folder:
                shutil.rmtree(previous.lora_path, ignore_errors=True)

    def sampling_params(self, trainer, suppressed: Sequence[int] = ()):
        """The hf path's sampling settings, read off the trainer as TRL sets them; `suppressed`: token ids never sampled."""
        from vllm import SamplingParams

        return SamplingParams(
            n=1, temperature=trainer.temperature, top_p=trainer.top_p, top_k=trainer.top_k or 0,
            min_p=trainer.min_p or 0.0, repetition_penalty=trainer.repetition_penalty,
            max_tokens=trainer.max_completion_length, stop_token_ids=list(trainer.eos_token_ids), detokenize=False,
            logit_bias={int(t): -100.0 for t in suppressed} or None,  # -100: vLLM's bound; e^-100 is never drawn
        )

    def complete(self, prompts: list[dict], params, eos_ids: Sequence[int]) -> tuple[list[list[int]], list[list[int] | None]]:
        """(completions cut after their first eos, each prompt's token ids as vLLM saw them; None for prompt embeddings)."""
        outputs = self.llm.generate(prompts, params, lora_request=self._lora, use_tqdm=False)
        completions = completions_up_to_eos([o.outputs[0].token_ids for o in outputs], eos_ids)
        return completions, [list(o.prompt_token_ids) if o.prompt_token_ids is not None else None for o in outputs]

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()
