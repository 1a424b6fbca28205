"""The HF Trainer around EmotionLM: stage-dependent freezing, our save format, resume, length grouping."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import get_last_checkpoint

from emoreason.model.loading import load_trainable_state, save_model
from emoreason.model.modeling import EmotionLM
from emoreason.model.processor import EmotionProcessor
from emoreason.train.config import TrainConfig


def freeze_for_stage(model: EmotionLM, stage: str) -> None:
    """align: projectors (and pre-fusion) only. instruct: projectors + LoRA. The base LLM never trains."""
    for name, param in model.named_parameters():
        if name.startswith("llm."):
            param.requires_grad = stage == "instruct" and "lora_" in name
        else:
            param.requires_grad = True


def training_arguments(cfg: TrainConfig) -> TrainingArguments:
    optim = cfg.optim
    return TrainingArguments(
        output_dir=optim.output_dir,
        num_train_epochs=optim.num_epochs,
        max_steps=optim.max_steps,
        per_device_train_batch_size=optim.batch_size,
        per_device_eval_batch_size=optim.batch_size,
        gradient_accumulation_steps=optim.grad_accum,
        learning_rate=optim.learning_rate,
        weight_decay=optim.weight_decay,
        warmup_steps=optim.warmup_ratio,  # a float in [0, 1) is a fraction of the total steps
        lr_scheduler_type=optim.lr_scheduler,
        seed=optim.seed,
        data_seed=optim.seed,
        bf16=optim.precision == "bf16",
        gradient_checkpointing=optim.gradient_checkpointing,
        train_sampling_strategy="group_by_length" if optim.group_by_length else "random",
        deepspeed=optim.deepspeed,
        save_strategy="steps",
        save_steps=optim.save_steps,
        save_total_limit=optim.save_total_limit,
        logging_steps=optim.logging_steps,
        eval_strategy="steps" if optim.eval_steps else "no",
        eval_steps=optim.eval_steps,
        dataloader_num_workers=optim.num_workers,
        remove_unused_columns=False,
        report_to=[],
        use_cpu=optim.use_cpu,
        disable_tqdm=False,
    )


class DatasetEpochCallback(TrainerCallback):
    """Tell the training dataset which epoch starts, so its per-epoch randomness (modality dropout) changes.

    accelerate's DataLoaderShard.set_epoch reaches the dataset only when the sampler has no set_epoch of its own
    (an `elif`), which is never the case under the Trainer: without this every epoch would drop the same modalities.
    state.epoch is a whole number at an epoch start and fractional when resuming mid-epoch, so int() is the epoch.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(int(state.epoch or 0))


class EmotionTrainer(Trainer):
    """Saves and restores only what trains (projectors, LoRA) in the emoreason model format."""

    def __init__(self, *args, emotion_processor: EmotionProcessor, **kwargs):
        super().__init__(*args, **kwargs)
        self.emotion_processor = emotion_processor
        if self.train_dataset is not None:
            self.add_callback(DatasetEpochCallback(self.train_dataset))

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        save_model(model, self.emotion_processor, output_dir, state_dict=state_dict)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        load_trainable_state(self.accelerator.unwrap_model(model or self.model), resume_from_checkpoint)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy == "group_by_length":
            # Lengths come from the processor at load time, so grouping reads no features.
            return LengthGroupedSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=dataset.lengths
            )
        return super()._get_train_sampler(train_dataset)


def resume_checkpoint(cfg: TrainConfig) -> str | None:
    if not cfg.optim.resume or not Path(cfg.optim.output_dir).is_dir():
        return None
    return get_last_checkpoint(cfg.optim.output_dir)
