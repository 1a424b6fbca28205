"""Held-out accuracy during training: greedy answers on a slice of data.eval, scored by the evaluator's rule.

The Trainer's evaluation gives the eval loss only; a model can lower it while still naming the wrong
label, so at each evaluation (every optim.eval_steps) this callback also answers up to
optim.eval_generate_samples held-out prompts and logs eval_accuracy, eval_unmatched (answers that
named no label, counted wrong) and eval_scored through Trainer.log: they reach the printed logs,
state.log_history and every report_to integration like the loss does.
"""

from __future__ import annotations

from transformers import TrainerCallback

from emoreason import schema
from emoreason.train.dataset import EmotionDataset
from emoreason.train.heldout import score_samples


class HeldoutAccuracyCallback(TrainerCallback):
    def __init__(self, trainer, dataset: EmotionDataset, labels: list[str], max_samples: int, max_new_tokens: int):
        self.trainer = trainer
        self.dataset = dataset
        self.labels = labels
        self.max_new_tokens = max_new_tokens
        # The same slice every time, so the numbers are comparable across steps.
        self.samples = [s for s in dataset.samples if s.conversations and s.targets and s.targets.emotion][:max_samples]

    def on_evaluate(self, args, state, control, **kwargs):
        if not self.samples:
            return
        # Every rank answers the same prompts: under ZeRO-3 generation needs all ranks to gather the weights.
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        was_training = model.training
        try:
            result = score_samples(model, self.trainer.emotion_processor, self.samples, self.dataset.features, self.labels, self.max_new_tokens)
        finally:
            model.train(was_training)
        self.trainer.log({"eval_accuracy": round(result.accuracy, 4), "eval_unmatched": result.unmatched, "eval_scored": result.total})


def emotion_labels(*datasets: EmotionDataset | None) -> list[str]:
    """The label set answers are read against: every emotion target of the training and held-out samples."""
    return schema.emotion_labels(s for d in datasets if d is not None for s in d.samples)
