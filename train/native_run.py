"""The training run behind `emoreason train` for `model.kind: native`: setup, train, save.

The same Trainer arguments, DeepSpeed/torchrun launch, checkpoints and resume as the projector
model's run (emoreason.train.run); what differs is the model (emoreason.native), its dataset and
collator (emoreason.train.native_dataset) and its save format (emoreason.train.native_trainer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transformers import set_seed

from emoreason.config import ConfigError
from emoreason.native.cache import NativeInputCache
from emoreason.native.conversation import NativeConversation
from emoreason.native.featurizer import NativeFeaturizer
from emoreason.native.model import NativeModel, build_processor
from emoreason.native.processor import NativeProcessor
from emoreason.train.cli import exit_status
from emoreason.train.native_config import NativeTrainConfig
from emoreason.train.native_dataset import NativeCollator, NativeDataset
from emoreason.train.native_trainer import NativeTrainer
from emoreason.train.run_folder import RunFolderError, RunPlan, plan_run, train_in_folder
from emoreason.train.trainer import training_arguments

INPUT_CACHE_DIR = "input_cache"


@dataclass
class NativeSetup:
    cfg: NativeTrainConfig
    model: NativeModel
    processor: NativeProcessor
    train_dataset: NativeDataset
    eval_dataset: NativeDataset | None
    trainer: NativeTrainer


def make_featurizer(cfg: NativeTrainConfig, processor: NativeProcessor) -> NativeFeaturizer:
    model = cfg.model
    cache = NativeInputCache(cfg.data.input_cache or Path(cfg.optim.output_dir) / INPUT_CACHE_DIR)
    return NativeFeaturizer(processor, model.frames, model.audio, cache=cache, faces=model.faces)


def setup(cfg: NativeTrainConfig) -> NativeSetup:
    set_seed(cfg.optim.seed)  # before LoRA's init draws, so every rank builds the same weights
    processor = build_processor(cfg.model)
    model = NativeModel.build(cfg.model)
    if cfg.init_from:
        model.load_trained_state(cfg.init_from)
    featurizer = make_featurizer(cfg, processor)
    conversation = NativeConversation(processor, cfg.model.system_prompt, cfg.model.max_length)
    train_dataset = NativeDataset(cfg.data.train, featurizer, conversation, cfg.data.data_root)
    eval_dataset = NativeDataset(cfg.data.eval, featurizer, conversation, cfg.data.data_root) if cfg.data.eval else None
    trainer = NativeTrainer(
        model=model,
        args=training_arguments(cfg),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=NativeCollator(processor),
        emotion_processor=processor,
    )
    return NativeSetup(cfg, model, processor, train_dataset, eval_dataset, trainer)


def train(run: NativeSetup, plan: RunPlan | None = None) -> Path:
    """Train (a new run, or an unfinished one resumed; see run_folder) and write the final model to <output_dir>/model."""
    plan = plan if plan is not None else plan_run(run.cfg)
    summary = (f"emoreason train: native {run.model.arch.model_type} from {run.cfg.model.base}, "
               f"{run.model.trainable_parameter_count():,} trainable parameters, {len(run.train_dataset)} samples")
    return train_in_folder(run.trainer, run.cfg, plan, summary=lambda: summary)


def run_config(cfg: NativeTrainConfig) -> int:
    def start() -> Path:
        plan = plan_run(cfg)  # a refusal comes before any weights load
        return train(setup(cfg), plan)

    return exit_status(start, (ConfigError, RunFolderError, ValueError))
