"""The training run behind `emoreason train` (train/cli.py): setup, train, save.

Launch on many GPUs with scripts/train_torchrun.sh (DeepSpeed via optim.deepspeed=...).
Re-running the same command resumes an unfinished run from its newest complete checkpoint; a finished
run is refused unless --overwrite (train/run_folder.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from transformers import set_seed

from emoreason.config import ConfigError
from emoreason.features.cache import FeatureFileError
from emoreason.features.featurizer import Featurizer
from emoreason.model.loading import build_model, load_model
from emoreason.model.modeling import EmotionLM
from emoreason.model.processor import EmotionProcessor
from emoreason.model.trust import UserTrust
from emoreason.train.cli import exit_status
from emoreason.train.collator import EmotionCollator
from emoreason.train.config import TrainConfig, check_data_files
from emoreason.train.dataset import DamagedFeaturesError, EmotionDataset, NoUsableSamplesError, WrongEncoderError
from emoreason.train.eval_callback import HeldoutAccuracyCallback, emotion_labels
from emoreason.train.run_folder import LOSS_CURVE_FILE, RunFolderError, RunPlan, plan_run, train_in_folder
from emoreason.train.summary import startup_summary, write_loss_curve
from emoreason.train.trainer import EmotionTrainer, check_report_to, freeze_for_stage, training_arguments


@dataclass
class Setup:
    cfg: TrainConfig
    model: EmotionLM
    processor: EmotionProcessor
    train_dataset: EmotionDataset
    eval_dataset: EmotionDataset | None
    trainer: EmotionTrainer


def make_dataset(cfg: TrainConfig, path: str, model: EmotionLM, processor: EmotionProcessor, train: bool) -> EmotionDataset:
    data = cfg.data
    # The model's own settings, not cfg.model: with init_from they are the loaded model's.
    config = model.model_config
    # A tuned encoder's inputs are decoded live whatever the feature source (its features are never cached).
    tuned = model.tuned_encoders
    live = Featurizer(config.encoders, config.media, tuned=tuned) if data.feature_source == "live" or tuned else None
    return EmotionDataset(
        path,
        processor,
        model.model_config.modalities,
        feature_source=data.feature_source,
        live=live,
        encoders=config.encoders,
        data_root=data.data_root,
        modality_dropout=data.modality_dropout if train else 0.0,
        seed=cfg.optim.seed,
    )


def setup(cfg: TrainConfig) -> Setup:
    check_report_to(cfg.optim.report_to)
    # Seed before any weights are drawn: build_model seeds only after peft has initialised LoRA A, which
    # otherwise comes from an unseeded generator and differs between runs (and between ranks before DeepSpeed
    # or DDP broadcast rank 0's weights).
    set_seed(cfg.optim.seed)
    if cfg.init_from:
        # The train YAML is the user's own: what its model section names, they allow for init_from too.
        model, processor = load_model(cfg.init_from, trainable=True, trust=UserTrust.from_config(cfg.model))
    else:
        model, processor = build_model(cfg.model, seed=cfg.optim.seed)
    freeze_for_stage(model, cfg.stage, cfg.trainable)
    train_dataset = make_dataset(cfg, cfg.data.train, model, processor, train=True)
    eval_dataset = make_dataset(cfg, cfg.data.eval, model, processor, train=False) if cfg.data.eval else None
    trainer = EmotionTrainer(
        model=model,
        args=training_arguments(cfg),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=EmotionCollator(processor.pad_id),
        emotion_processor=processor,
    )
    if eval_dataset is not None and cfg.optim.eval_steps and cfg.optim.eval_generate_samples:
        labels = emotion_labels(train_dataset, eval_dataset)
        trainer.add_callback(
            HeldoutAccuracyCallback(trainer, eval_dataset, labels, cfg.optim.eval_generate_samples, cfg.optim.eval_max_new_tokens)
        )
    return Setup(cfg, model, processor, train_dataset, eval_dataset, trainer)


def train(run: Setup, plan: RunPlan | None = None) -> Path:
    """Train (a new run, or an unfinished one resumed; see run_folder) and write the final model to <output_dir>/model."""
    cfg = run.cfg
    out_dir = Path(cfg.optim.output_dir)
    plan = plan if plan is not None else plan_run(cfg)
    final = train_in_folder(run.trainer, cfg, plan, summary=lambda: startup_summary(run, plan.resume_from))
    if run.trainer.is_world_process_zero():
        curve = write_loss_curve(run.trainer.state.log_history, out_dir / LOSS_CURVE_FILE, out_dir.name)
        if curve is not None:
            print(f"loss curve: {curve}")
    return final


def run_config(cfg: TrainConfig) -> int:
    """`emoreason train` once its config is valid (train/cli.py parses and validates it first)."""
    def start() -> Path:
        check_data_files(cfg)
        plan = plan_run(cfg)  # a refusal comes before any weights load
        return train(setup(cfg), plan)

    return exit_status(start, (ConfigError, RunFolderError, NoUsableSamplesError, DamagedFeaturesError, FeatureFileError,
                               WrongEncoderError))


def main(argv: list[str] | None = None) -> int:
    from emoreason.train.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
