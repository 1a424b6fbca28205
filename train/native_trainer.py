"""The HF Trainer for the native kind: EmotionTrainer (atomic checkpoints, resume, length grouping, the
non-finite-loss stop) with the native model directory as its save format."""

from __future__ import annotations

import os

import torch

from emoreason.train.trainer import EmotionTrainer


class NativeTrainer(EmotionTrainer):
    """Saves what trains (LoRA adapters, full components) as a native model directory.

    The Trainer assumes a PreTrainedModel whose state_dict it can save and reload whole; a native
    model's frozen weights live in its `base` checkpoint, so a checkpoint holds only the trained part
    (NativeModel.write_files), and resuming loads it back onto a model built from `base`.
    """

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        from pathlib import Path

        output_dir = Path(output_dir or self.args.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model)
        model.write_files(output_dir, self.emotion_processor, state_dict=state_dict)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        self.accelerator.unwrap_model(model or self.model).load_trained_state(resume_from_checkpoint)
