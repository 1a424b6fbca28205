"""The HF Trainer around EmotionLM: stage-dependent freezing, our save format, atomic checkpoints and resume,
length grouping, and a stop on a non-finite loss."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import rotate_checkpoints

from emoreason.config import ConfigError
from emoreason.model.loading import load_trainable_state, save_model
from emoreason.model.modeling import EmotionLM
from emoreason.model.processor import EmotionProcessor
from emoreason.progress import show_progress
from emoreason.train import checkpoints
from emoreason.train.config import TrainConfig


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the step and the batch's sample ids."""


def trainable_group(name: str) -> list[str]:
    """The groups of the `trainable` key (TrainConfig.trainable) that a parameter belongs to."""
    if name.startswith("llm."):
        return ["lora"] if "lora_" in name else []
    if name.startswith("encoders."):  # a tuned encoder: its adapters, never its base weights
        return ["encoders", ".".join(name.split(".", 2)[:2])] if "lora_" in name else []
    top = name.split(".", 1)[0]
    if top == "projectors":
        return ["projectors", ".".join(name.split(".", 2)[:2])]  # "projectors" and "projectors.<modality>"
    return [top]


def freeze_for_stage(model: EmotionLM, stage: str, trainable: list[str] | None = None) -> None:
    """align: projectors (and pre-fusion, landmark attention) only. instruct: those + LoRA. The base LLM
    never trains. `trainable` (the config key) names the groups to train instead of the stage's default:
    everything else stays frozen, so its weights come out of training bit-identical."""
    if trainable is not None:
        present = {group for name, _ in model.named_parameters() for group in trainable_group(name)}
        for group in trainable:
            if group not in present:
                raise ConfigError(f"key 'trainable': {group!r} names no parameters of this model; "
                                  f"it has {sorted(present)}")
        for name, param in model.named_parameters():
            param.requires_grad = bool(set(trainable_group(name)) & set(trainable))
        return
    for name, param in model.named_parameters():
        if name.startswith(("llm.", "encoders.")):
            # A tuned encoder's adapters train with the LLM's, as a native backbone's towers (align: connector only).
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
        report_to=list(optim.report_to),
        use_cpu=optim.use_cpu,
        # Off a terminal the Trainer prints each log line instead of redrawing a bar.
        disable_tqdm=not show_progress(),
    )


def check_report_to(names: list[str]) -> None:
    """Refuse an unknown or uninstalled report_to integration before any weights load (the Trainer would
    fail later, inside its callback's constructor)."""
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    available = get_available_reporting_integrations()
    for name in names:
        if name in ("none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise ConfigError(f"key 'optim.report_to': unknown integration {name!r}; transformers knows {sorted(INTEGRATION_TO_CALLBACK)}")
        if name not in available:
            raise ConfigError(f"key 'optim.report_to': {name!r} is not installed here (pip install {name}); "
                              f"installed: {available or 'none'}")


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
        self._staging_dir: Path | None = None
        if self.train_dataset is not None:
            self.add_callback(DatasetEpochCallback(self.train_dataset))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's loss, after taking out the batch's sample ids (the model takes no such input).

        A NaN or infinite training loss stops the run here, before the optimiser applies it: the Trainer
        would otherwise log it, step on NaN gradients and save a model that is NaN in every trained weight.
        """
        inputs = dict(inputs)
        sample_ids = inputs.pop("sample_ids", None)
        result = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        loss = result[0] if return_outputs else result
        if model.training and not math.isfinite(loss.detach().float().item()):
            raise NonFiniteLossError(
                f"non-finite training loss ({loss.item()}) at step {self.state.global_step + 1}; "
                f"batch samples: {sample_ids if sample_ids is not None else 'unknown'}"
            )
        return result

    def _get_output_dir(self, trial) -> str:
        # While a checkpoint is saved, the Trainer's own _save_checkpoint writes into the staging folder.
        if self._staging_dir is not None:
            return str(self._staging_dir)
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial) -> None:
        """The Trainer's checkpoint, written into a staging folder and renamed into place when complete.

        The Trainer writes checkpoint-N/ in place, so a kill mid-save leaves a folder that resume would pick
        and fail to load (see emoreason.train.checkpoints). Every rank writes its part into the staging folder;
        after a barrier the main process publishes it and rotates old checkpoints itself, since the Trainer's
        rotation ran inside the staging folder. Best-model tracking (metric_for_best_model) is not supported:
        training_arguments never sets it.
        """
        run_dir = Path(super()._get_output_dir(trial))
        staging = checkpoints.staging_root(run_dir, self.state.global_step)
        if self.args.should_save:
            checkpoints.remove_stale_staging(run_dir)
        self.accelerator.wait_for_everyone()
        self._staging_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            checkpoints.publish(run_dir, self.state.global_step)
            rotate_checkpoints(
                output_dir=str(run_dir),
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()

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
