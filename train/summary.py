"""What a training run tells its user: a start-up summary before step 1, and the loss curve at the end."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from emoreason.train.dataset import EmotionDataset


def optimiser_steps(num_samples: int, batch_size: int, grad_accum: int, world_size: int, num_epochs: float, max_steps: int) -> int:
    """The Trainer's own count: batches per epoch over all ranks, grouped by grad_accum (a short last group is a step)."""
    if max_steps > 0:
        return max_steps
    batches = math.ceil(num_samples / (batch_size * world_size))
    per_epoch = max(batches // grad_accum + int(batches % grad_accum > 0), 1)
    return math.ceil(num_epochs * per_epoch)


def _dataset_line(role: str, dataset: EmotionDataset) -> str:
    return f"{role}: {len(dataset)} samples kept, {len(dataset.skipped)} skipped ({dataset.path})"


def startup_summary(run, resume_from: str | None) -> str:
    """Samples kept and skipped, trainable parameters, tokens per optimiser step, and the number of steps."""
    optim, args = run.cfg.optim, run.trainer.args
    lines = [_dataset_line("train", run.train_dataset)]
    if run.eval_dataset is not None:
        lines.append(_dataset_line("eval", run.eval_dataset))
    total = sum(p.numel() for p in run.model.parameters())
    lora = sum(p.numel() for n, p in run.model.named_parameters() if p.requires_grad and n.startswith("llm."))
    trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    lines.append(
        f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(1, total):.2f}%): "
        f"projectors {trainable - lora:,}, LoRA {lora:,}"
    )
    samples_per_step = optim.batch_size * optim.grad_accum * args.world_size
    lengths = run.train_dataset.lengths
    mean_length = sum(lengths) / max(1, len(lengths))
    # Lengths count every position the LLM sees, media placeholders included.
    lines.append(
        f"tokens per step: ~{round(samples_per_step * mean_length):,} ({samples_per_step} samples = batch {optim.batch_size} "
        f"x grad_accum {optim.grad_accum} x {args.world_size} process(es), {mean_length:.1f} tokens each on average)"
    )
    steps = optimiser_steps(len(run.train_dataset), optim.batch_size, optim.grad_accum, args.world_size, optim.num_epochs, optim.max_steps)
    how = "max_steps" if optim.max_steps > 0 else f"{optim.num_epochs:g} epoch(s)"
    lines.append(f"steps: {steps} ({how}); {'resuming from ' + resume_from if resume_from else 'starting at step 0'}")
    lines.append(f"output: {optim.output_dir}")
    return "\n".join(f"emoreason train: {line}" for line in lines)


def write_loss_curve(log_history: list[dict], path: str | Path, run_name: str) -> Path | None:
    """Training (and eval) loss against the step, with held-out accuracy when it was scored; None without matplotlib."""
    try:
        from emoreason.figures import pyplot, save_png

        plt = pyplot()
    except ImportError:
        print("emoreason train: matplotlib is not installed (the train or eval extra): no loss curve", file=sys.stderr)
        return None
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    accuracy = [(h["step"], h["eval_accuracy"]) for h in log_history if "eval_accuracy" in h]
    if not train and not evals:
        return None
    title = f"{run_name}: loss"
    fig, ax = plt.subplots(figsize=(6, 3.5))
    try:
        if train:
            ax.plot(*zip(*train), label="train loss", marker="." if len(train) < 30 else None)
        if evals:
            ax.plot(*zip(*evals), label="eval loss", marker="o")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        handles, labels = ax.get_legend_handles_labels()
        if accuracy:
            acc_ax = ax.twinx()
            acc_ax.plot(*zip(*accuracy), label="held-out accuracy", color="tab:green", marker="s", linestyle="--")
            acc_ax.set_ylim(0, 1)
            acc_ax.set_ylabel("accuracy")
            more = acc_ax.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        ax.legend(handles, labels, loc="best")
        ax.set_title(title)
        return save_png(fig, path, title=title)
    finally:
        plt.close(fig)
