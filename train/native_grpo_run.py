"""Stage `grpo` for `model.kind: native`: reinforcement learning from a supervised native model (init_from).

As for the projector model (emoreason.train.grpo_run): init_from is exported once with every LoRA
merged and every full component in place (`<output_dir>/init`, a plain transformers checkpoint), and
a fresh LoRA (`grpo.lora`, on the LLM only) trains on it with everything else frozen. So the policy
starts as the supervised model, and with its LoRA disabled it is that model throughout: the KL
reference. The same checks run before any step (rewards, weights, num_generations against the batch,
target fields, the judge, the curriculum); what differs is the prompt store, which encodes each
sample with its media through the backbone's processor (emoreason.native.samples.encode_sample).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from emoreason.native.config import ComponentTraining, NativeLora
from emoreason.native.conversation import NativeConversation, NativeEncoded
from emoreason.native.featurizer import NativeFeaturizer
from emoreason.native.model import NativeModel, build_processor, read_native_config
from emoreason.native.processor import NativeProcessor
from emoreason.native.samples import encode_sample
from emoreason.schema import Sample, load_samples
from emoreason.train.grpo_config import CurriculumPhase
from emoreason.train.grpo_data import CurriculumError
from emoreason.train.cli import exit_status
from emoreason.train.grpo_run import (
    GRPO_REFUSALS, checked_start, grpo_arguments, init_model_dir, phases, rewards_and_prompts, train_grpo_in_folder,
)
from emoreason.train.native_config import NativeTrainConfig
from emoreason.train.run_folder import RunPlan, plan_run
from emoreason.train.vllm_rollouts import native_rollouts


@dataclass
class NativePromptStore:
    """Per sample id: the sample (targets, conversation) and its media folder; prompts are encoded on demand
    (the featurizer's input cache keeps each clip's processed media, so a clip is decoded once)."""

    samples: dict[str, Sample]
    roots: dict[str, Path]
    featurizer: NativeFeaturizer
    conversation: NativeConversation

    def turns(self, sample_id: str) -> list:
        from emoreason.model.generation import prompt_turns

        return prompt_turns(self.samples[sample_id].conversations)

    def encode(self, sample_id: str) -> NativeEncoded:
        encoded, _ = encode_sample(self.samples[sample_id], self.roots[sample_id], self.featurizer, self.conversation,
                                   generation_prompt=True)
        return encoded


def _task(sample: Sample) -> str | None:
    return (sample.source.get("instruction") or {}).get("task")


def build_native_store(run_phases: list[CurriculumPhase], cfg: NativeTrainConfig, featurizer: NativeFeaturizer,
                       conversation: NativeConversation) -> tuple[NativePromptStore, list[list[str]]]:
    """The store over every phase's samples (those with a conversation), and each phase's sample ids."""
    store = NativePromptStore({}, {}, featurizer, conversation)
    per_phase: list[list[str]] = []
    for i, phase in enumerate(run_phases):
        path = Path(phase.data or cfg.data.train)
        samples = [s for s in load_samples(path) if s.conversations and (phase.task is None or _task(s) == phase.task)]
        if not samples:
            what = f" with task {phase.task!r}" if phase.task else ""
            raise CurriculumError(f"key 'grpo.curriculum[{i}]': {path} has no sample{what} with a conversation")
        for s in samples:
            store.samples[s.id] = s
            store.roots[s.id] = s.media_root(cfg.data.data_root, path.parent)
        per_phase.append([s.id for s in samples])
    return store, per_phase


@dataclass
class NativeGRPOSetup:
    cfg: NativeTrainConfig
    model: NativeModel
    processor: NativeProcessor
    store: NativePromptStore
    labels: list[str]
    trainer: object


def native_policy(cfg: NativeTrainConfig) -> tuple[NativeModel, NativeProcessor]:
    """init_from merged (<output_dir>/init) with a fresh LoRA on its LLM (B = 0: the policy starts as init_from)."""
    init = init_model_dir(cfg).resolve()
    lora = cfg.grpo.lora
    model_cfg = dataclasses.replace(
        read_native_config(init), base=str(init),
        components={"llm": ComponentTraining("lora", lora_targets=list(lora.target_modules))},
        lora=NativeLora(r=lora.r, alpha=lora.alpha, dropout=lora.dropout),
    )
    torch.manual_seed(cfg.optim.seed)  # LoRA A is drawn here: the same on every rank and every run
    return NativeModel.build(model_cfg), build_processor(model_cfg)


def setup_native_grpo(cfg: NativeTrainConfig, judge=None) -> NativeGRPOSetup:
    """Check every input, build the policy and the trainer; nothing trains yet."""
    from emoreason.train.native_grpo_trainer import NativeGRPOTrainer
    from emoreason.train.native_run import make_featurizer

    per_step = checked_start(cfg)
    model, processor = native_policy(cfg)
    run_phases = phases(cfg)
    conversation = NativeConversation(processor, model.cfg.system_prompt, model.cfg.max_length)
    store, per_phase = build_native_store(run_phases, cfg, make_featurizer(cfg, processor), conversation)
    labels, rewards, dataset = rewards_and_prompts(cfg, store, per_phase, run_phases, per_step, judge)
    trainer = NativeGRPOTrainer(model=model, store=store, reward_funcs=rewards, args=grpo_arguments(cfg),
                                train_dataset=dataset, emotion_processor=processor,
                                rollouts=native_rollouts(cfg, model.cfg.base, model.cfg, processor))
    return NativeGRPOSetup(cfg, model, processor, store, labels, trainer)


def train_native_grpo(run: NativeGRPOSetup, plan: RunPlan | None = None) -> Path:
    """Train (or resume) and write <output_dir>/model: a native model directory whose base is <output_dir>/init.
    A judge that fails mid-run stops it as it stops the projector run (grpo_run.train_grpo_in_folder)."""
    return train_grpo_in_folder(run.trainer, run.cfg, plan if plan is not None else plan_run(run.cfg))


def run_native_grpo_config(cfg: NativeTrainConfig) -> int:
    """`emoreason train` for stage grpo on the native kind, once its config is valid."""
    def start() -> Path:
        plan = plan_run(cfg)  # a refusal comes before any weights load
        return train_native_grpo(setup_native_grpo(cfg), plan)

    # ValueError: as the native supervised run, a sample or media setting the backbone's processor refuses.
    return exit_status(start, (*GRPO_REFUSALS, ValueError))
