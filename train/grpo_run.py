"""Stage `grpo`: reinforcement learning from a supervised model (init_from) with the evaluator's metrics as rewards.

The supervised model's LoRA is merged into its LLM once (`<output_dir>/init`, an export of init_from),
and a fresh LoRA trains on top with the projectors frozen. So at step 0 the policy is exactly the
supervised model, and the policy with its LoRA disabled is that model throughout: the KL reference,
without a second copy. Every bad input (unknown reward, weights that do not match, a num_generations
that does not divide the batch, a sample lacking a field a reward needs, a judge that is down) stops
the run here, before any step; a judge that fails later stops it with the step named and a checkpoint
kept. The native kind's run (emoreason.train.native_grpo_run) shares these checks and that stop.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import set_seed

from emoreason.atomic import write_json_atomic
from emoreason.config import ConfigError
from emoreason.model.loading import MODEL_FILE, load_model
from emoreason.model.modeling import EmotionLM
from emoreason.model.processor import EmotionProcessor
from emoreason.model.trust import UserTrust
from emoreason.schema import Sample, emotion_labels
from emoreason.train.cli import exit_status
from emoreason.train.config import TrainConfig
from emoreason.train.grpo_config import CurriculumPhase
from emoreason.train.grpo_data import CurriculumError, PromptStore, build_store, curriculum_rows, prompt_dataset
from emoreason.train.grpo_rewards import (
    JudgeDownError, JudgeReward, Reward, RewardDataError, build_rewards, check_judge, check_reward_data,
)
from emoreason.train.run_folder import RunFolderError, RunPlan, plan_run, train_in_folder
from emoreason.train.vllm_rollouts import check_rollout_backend, projector_rollouts

INIT_DIR = "init"
INIT_STAMP = "grpo_init.json"


@dataclass
class GRPOSetup:
    cfg: TrainConfig
    model: EmotionLM
    processor: EmotionProcessor
    store: PromptStore
    labels: list[str]
    trainer: object


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def phases(cfg: TrainConfig) -> list[CurriculumPhase]:
    if cfg.grpo.curriculum:
        return cfg.grpo.curriculum
    if cfg.optim.max_steps <= 0:
        raise ConfigError("key 'optim.max_steps': stage grpo needs a step count (or grpo.curriculum with steps per phase)")
    return [CurriculumPhase(steps=cfg.optim.max_steps)]


def prompts_per_step(cfg: TrainConfig) -> int:
    """Distinct prompts one optimiser step consumes; ConfigError when num_generations does not divide the batch."""
    g = cfg.grpo
    generation_batch = cfg.optim.batch_size * cfg.optim.grad_accum * world_size()
    if generation_batch % g.num_generations:
        raise ConfigError(
            f"key 'grpo.num_generations': {g.num_generations} does not divide the generation batch of {generation_batch} "
            f"completions (optim.batch_size {cfg.optim.batch_size} x optim.grad_accum {cfg.optim.grad_accum} x "
            f"{world_size()} rank(s)); TRL groups each prompt's completions inside one batch"
        )
    prompts = generation_batch // g.num_generations
    if prompts % g.num_iterations:
        raise ConfigError(f"key 'grpo.num_iterations': {g.num_iterations} does not divide the {prompts} prompts of a generation batch")
    return prompts // g.num_iterations


def grpo_arguments(cfg: TrainConfig):
    from trl import GRPOConfig

    optim, g = cfg.optim, cfg.grpo
    return GRPOConfig(
        output_dir=optim.output_dir,
        max_steps=sum(p.steps for p in phases(cfg)),
        per_device_train_batch_size=optim.batch_size,
        gradient_accumulation_steps=optim.grad_accum,
        learning_rate=optim.learning_rate,
        weight_decay=optim.weight_decay,
        warmup_steps=optim.warmup_ratio,
        lr_scheduler_type=optim.lr_scheduler,
        seed=optim.seed,
        data_seed=optim.seed,
        bf16=optim.precision == "bf16",
        gradient_checkpointing=optim.gradient_checkpointing,  # TRL's default is on; ours is the config's
        deepspeed=optim.deepspeed,
        save_strategy="steps",
        save_steps=optim.save_steps,
        save_total_limit=optim.save_total_limit,
        logging_steps=optim.logging_steps,
        report_to=[],
        use_cpu=optim.use_cpu,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        # GRPO's own settings, by TRL's names
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        top_p=g.top_p,
        top_k=g.top_k,
        beta=g.beta,
        epsilon=g.epsilon,
        num_iterations=g.num_iterations,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        reward_weights=g.weights,
        shuffle_dataset=False,  # the curriculum is the row order
        log_completions=g.log_completions,
        disable_dropout=True,
    )


def init_model_dir(cfg, trust: UserTrust | None = None) -> Path:
    """init_from exported once (its LoRA merged into its LLM): the frozen base the GRPO LoRA trains on.

    cfg: either kind's train config (export_model picks the kind from init_from's files)."""
    from emoreason.serving.export import export_model

    init = Path(cfg.optim.output_dir) / INIT_DIR
    stamp = Path(cfg.optim.output_dir) / INIT_STAMP
    source = str(Path(cfg.init_from).resolve())
    done = stamp.exists() and (init / MODEL_FILE).exists() and not cfg.optim.overwrite
    if done and json.loads(stamp.read_text()).get("init_from") == source:
        return init
    if done:
        raise ConfigError(f"key 'init_from': {cfg.optim.output_dir} was started from another model; use a new optim.output_dir")
    if int(os.environ.get("RANK", "0")) == 0:
        export_model(cfg.init_from, init, trust=trust)
        write_json_atomic(stamp, {"init_from": source})
    if world_size() > 1:
        _wait_for(stamp)
    return init


def _wait_for(path: Path, seconds: float = 600.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {os.environ.get('RANK')}: {path} never appeared (rank 0 writes it)")
        time.sleep(0.2)


def policy_model(cfg: TrainConfig) -> tuple[EmotionLM, EmotionProcessor]:
    """The merged supervised model with a fresh LoRA (B = 0: the policy starts as the supervised model)."""
    from peft import LoraConfig, get_peft_model

    init = init_model_dir(cfg, UserTrust.from_config(cfg.model))
    model, processor = load_model(init, trust=UserTrust.from_config(cfg.model))
    lora = cfg.grpo.lora
    torch.manual_seed(cfg.optim.seed)  # LoRA A is drawn here: the same on every rank and every run
    model.llm = get_peft_model(model.llm, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                     target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    model.model_config = dataclasses.replace(model.model_config, llm=str(Path(model.model_config.llm).resolve()), lora=lora)
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name  # projectors frozen: the reference (LoRA disabled) must not move
    return model, processor


def training_labels(cfg, samples: Mapping[str, Sample]) -> list[str]:
    if cfg.grpo.labels:
        return list(cfg.grpo.labels)
    return emotion_labels(samples.values())


def checked_rewards(cfg, samples: Mapping[str, Sample], judge=None) -> tuple[list[str], list[Reward]]:
    """Either kind's label set and rewards: each reward checked against every sample, the judge asked once; all before any step."""
    labels = training_labels(cfg, samples)
    rewards = build_rewards(cfg.grpo, samples, labels, judge=judge)
    check_reward_data(rewards, samples, cfg.data.train)
    for reward in rewards:
        if isinstance(reward, JudgeReward):
            check_judge(reward)
    return labels, rewards


def checked_start(cfg) -> int:
    """Either kind's setup begins here: the seed set, then the checks a config fails before any weights load (the
    batch against num_generations, the rollout backend against the world size). Returns the prompts per step."""
    set_seed(cfg.optim.seed)
    per_step = prompts_per_step(cfg)
    check_rollout_backend(cfg, world_size())
    return per_step


def rewards_and_prompts(cfg, store, per_phase: list[list[str]], run_phases: list[CurriculumPhase], per_step: int,
                        judge=None) -> tuple[list[str], list[Reward], object]:
    """Either kind's label set and checked rewards over the store's samples, and the curriculum's prompt rows as
    the trainer's dataset: (labels, rewards, train_dataset)."""
    labels, rewards = checked_rewards(cfg, store.samples, judge)
    rows = curriculum_rows(per_phase, run_phases, per_step, cfg.optim.seed)
    return labels, rewards, prompt_dataset(store, rows)


def setup_grpo(cfg: TrainConfig, judge=None) -> GRPOSetup:
    """Check every input, build the policy and the trainer; nothing trains yet."""
    from emoreason.train.grpo_trainer import EmotionGRPOTrainer

    per_step = checked_start(cfg)
    model, processor = policy_model(cfg)
    run_phases = phases(cfg)
    store, per_phase = build_store(run_phases, cfg.data.train, model.model_config.modalities)
    labels, rewards, dataset = rewards_and_prompts(cfg, store, per_phase, run_phases, per_step, judge)
    trainer = EmotionGRPOTrainer(
        model=model, store=store, reward_funcs=rewards, args=grpo_arguments(cfg), train_dataset=dataset,
        emotion_processor=processor, rollouts=projector_rollouts(cfg, model.model_config),
    )
    return GRPOSetup(cfg, model, processor, store, labels, trainer)


def train_grpo(run: GRPOSetup, plan: RunPlan | None = None) -> Path:
    """Train (a new run, or an unfinished one resumed: emoreason.train.run_folder) and write <output_dir>/model."""
    return train_grpo_in_folder(run.trainer, run.cfg, plan if plan is not None else plan_run(run.cfg))


def train_grpo_in_folder(trainer, cfg, plan: RunPlan) -> Path:
    """Either kind's GRPO run in its folder (run_folder.train_in_folder), with the judge's fault handled.

    A judge that fails mid-run (after its client's retries) stops the run with the step named and a
    checkpoint of the steps finished so far, from which the same command resumes.
    """
    try:
        return train_in_folder(trainer, cfg, plan)
    except JudgeDownError as exc:
        step = trainer.state.global_step
        if step == 0:
            raise JudgeDownError(f"at step 1: {exc}; no step had finished, so there is nothing to keep: re-run to start again") from None
        trainer._save_checkpoint(trainer.model, trial=None)
        raise JudgeDownError(f"at step {step + 1}: {exc}; checkpoint-{step} kept in {cfg.optim.output_dir}, "
                             "re-run the same command to resume from it") from None


# What stops a GRPO run of either kind with exit status 2 (emoreason.train.cli.exit_status).
GRPO_REFUSALS = (ConfigError, RunFolderError, CurriculumError, RewardDataError, JudgeDownError)


def run_grpo_config(cfg: TrainConfig) -> int:
    """`emoreason train` for stage grpo, once its config is valid."""
    def start() -> Path:
        plan = plan_run(cfg)  # a refusal comes before any weights load
        return train_grpo(setup_grpo(cfg), plan)

    return exit_status(start, GRPO_REFUSALS)
