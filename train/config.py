"""TrainConfig: the model, the data, and the optimisation; one YAML per recipe in configs/train/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from emoreason.config import ConfigError, check, config_from_dict, read_config_data, value_source
from emoreason.constants import MODALITIES
from emoreason.model.config import ModelConfig, check_against_checkpoints
from emoreason.train.grpo_config import GRPOSettings

STAGES = ("align", "instruct", "grpo")


@dataclasses.dataclass
class DataConfig:
    train: str
    """Samples JSONL written by `emoreason prep` (features referenced) or with media for the live path;
    `registry:NAME` takes the path from the dataset registry (docs/datasets.md)."""
    eval: str | None = None
    """Held-out samples: eval loss every optim.eval_steps, and greedy answers scored on a slice of them."""
    feature_source: str = "cache"
    """'cache' reads prep's fp16 features (fast); 'live' decodes media and runs the encoders each step."""
    data_root: str | None = None
    """Media root for the live path; defaults to the samples file's folder (or the registry entry's data_root)."""
    modality_dropout: float = 0.0
    """Chance to drop each modality of a training sample (its placeholder goes too); one always stays."""

    def __post_init__(self) -> None:
        check(self.feature_source in ("cache", "live"), "feature_source", "'cache' or 'live'", self.feature_source)
        check(0 <= self.modality_dropout < 1, "modality_dropout", "a number in [0, 1)", self.modality_dropout)


@dataclasses.dataclass
class OptimConfig:
    output_dir: str
    """Checkpoints and the final model directory (<output_dir>/model)."""
    num_epochs: float = 1.0
    max_steps: int = -1
    """Stop after this many optimiser steps (overrides num_epochs when > 0)."""
    batch_size: int = 8
    """Per-device micro-batch size."""
    grad_accum: int = 1
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    """Fraction of the total steps spent warming the learning rate up from 0."""
    lr_scheduler: str = "cosine"
    seed: int = 0
    precision: str = "fp32"
    """'fp32' or 'bf16' (autocast with fp32 master weights)."""
    gradient_checkpointing: bool = False
    group_by_length: bool = False
    """Batch samples of similar token length together (less padding)."""
    deepspeed: str | None = None
    """DeepSpeed JSON (configs/deepspeed/zero2.json, zero3.json); launch with torchrun."""
    resume: bool = True
    """Continue an unfinished run from the newest checkpoint in output_dir when there is one."""
    overwrite: bool = False
    """Train anew in an output_dir that holds a run (finished or not): its checkpoints, model and record go first."""
    save_steps: int = 500
    save_total_limit: int | None = 3
    logging_steps: int = 10
    eval_steps: int | None = None
    """Every this many steps: eval loss on data.eval, and held-out accuracy by greedy answers."""
    eval_generate_samples: int = 64
    """How many data.eval samples (with an emotion target) are answered greedily and scored each evaluation; 0: none."""
    eval_max_new_tokens: int = 32
    """Answer length for that scoring; the label is read with the evaluator's own rule (emoreason.labels)."""
    report_to: list[str] | str = dataclasses.field(default_factory=lambda: ["none"])
    """transformers' report_to: 'none', 'all', or integrations such as 'tensorboard', 'wandb' (installed separately)."""
    num_workers: int = 0
    """DataLoader workers."""
    use_cpu: bool = False
    """Force CPU even when a GPU is visible (DeepSpeed on CPU needs it)."""

    def __post_init__(self) -> None:
        check(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        check(self.grad_accum >= 1, "grad_accum", "an integer >= 1", self.grad_accum)
        check(self.learning_rate > 0, "learning_rate", "a positive number", self.learning_rate)
        check(0 <= self.warmup_ratio < 1, "warmup_ratio", "a number in [0, 1)", self.warmup_ratio)
        check(self.precision in ("fp32", "bf16"), "precision", "'fp32' or 'bf16'", self.precision)
        check(self.num_epochs > 0 or self.max_steps > 0, "num_epochs", "a positive number (or set max_steps)", self.num_epochs)
        check(self.deepspeed is None or Path(self.deepspeed).exists(), "deepspeed", "an existing DeepSpeed JSON file", self.deepspeed)
        check(self.eval_generate_samples >= 0, "eval_generate_samples", "an integer >= 0", self.eval_generate_samples)
        check(self.eval_max_new_tokens >= 1, "eval_max_new_tokens", "an integer >= 1", self.eval_max_new_tokens)
        check(self.eval_steps is None or self.eval_steps >= 1, "eval_steps", "an integer >= 1 (or null)", self.eval_steps)
        if isinstance(self.report_to, str):  # `optim.report_to=tensorboard` on the command line
            self.report_to = [self.report_to]
        names = self.report_to
        check(bool(names) and all(names), "report_to", "a list of integration names, e.g. [none] or [tensorboard]", self.report_to)
        check(len(names) == 1 or not {"none", "all"} & set(names), "report_to", "'none' or 'all' alone, or integration names", self.report_to)


@dataclasses.dataclass
class TrainConfig:
    stage: str
    """'align': projectors only, LLM frozen, caption-style data. 'instruct': projectors + LoRA.
    'grpo': reinforcement learning from a supervised model (init_from) with the `grpo:` rewards (docs/grpo.md)."""
    model: ModelConfig
    data: DataConfig
    optim: OptimConfig
    init_from: str | None = None
    """A saved model directory (e.g. the align stage's) to continue from instead of fresh projectors."""
    grpo: GRPOSettings | None = None
    """Stage grpo only: rewards, sampling, KL and curriculum (emoreason.train.grpo_config)."""
    trainable: list[str] | None = None
    """The module groups this stage trains, instead of its default (align: every projector-side module;
    instruct: those, the LoRA and a tuned encoder's adapters): among "projectors", "projectors.<modality>",
    "prefusion", "landmark_attention", "lora", "encoders" and "encoders.<modality>" (LoRA-tuned encoders).
    Everything else stays frozen, bit-identical (Face-LLaVA's stage 1 trains only [landmark_attention]).
    null = the stage's default."""

    def __post_init__(self) -> None:
        check(self.stage in STAGES, "stage", f"one of {list(STAGES)}", self.stage)
        if self.trainable is not None:
            self._check_trainable()
        if self.stage == "grpo":
            check(self.init_from is not None, "init_from", "a supervised model directory (stage grpo starts from one)")
            for m, enc in self.model.encoders.items():
                # GRPO's rollouts read prep's cached features (train/grpo_data.py); a tuned encoder has none.
                check(not enc.train.trainable, f"model.encoders.{m}.train.mode",
                      "frozen for stage grpo, which reads cached features (export the model to merge the encoder's LoRA, "
                      "prep with the merged encoder, and start GRPO from the export)", enc.train.mode)
            self.grpo = self.grpo or GRPOSettings()
        else:
            check(self.grpo is None, "grpo", f"no grpo block for stage {self.stage!r} (it is read by stage grpo only)")
        for m in self.model.projectors:
            check(m in MODALITIES, f"model.projectors.{m}", f"a modality among {list(MODALITIES)}", m)

    def _check_trainable(self) -> None:
        """Each name must be a group this model has, so a typo cannot silently freeze everything."""
        model = self.model
        groups = [f"projectors.{m}" for m in model.projectors] + ["projectors"]
        groups += ["prefusion"] * model.prefusion.enabled + ["landmark_attention"] * model.landmark_attention.enabled
        groups += ["lora"] * (model.lora is not None)
        tuned = [m for m, enc in model.encoders.items() if enc.train.trainable]
        groups += [f"encoders.{m}" for m in tuned] + ["encoders"] * bool(tuned)
        names = self.trainable
        check(self.stage != "grpo", "trainable", "null for stage grpo (its trainer trains the LoRA)", names)
        check(isinstance(names, list) and bool(names) and len(set(map(str, names))) == len(names), "trainable",
              f"a non-empty list of distinct module groups among {groups}", names)
        for name in names:
            check(name in groups, "trainable", f"module groups of this model, among {groups}", name)
        check(self.stage != "align" or "lora" not in names, "trainable",
              "no 'lora' for stage align (it keeps the LLM frozen; stage instruct trains the LoRA)", names)


def load_train_config(path: str | None, overrides: list[str] | None = None, check_checkpoints: bool = True) -> TrainConfig:
    """Load, resolve the model block (init_from or prep's contract), validate, and (by default) check the
    LLM and encoder references before any weights load."""
    from emoreason.train.model_source import check_against_contract, model_from_contract, model_from_init

    overrides = overrides or []
    data = read_config_data(path, overrides)
    where = path or "<command line>"

    def located(exc: ConfigError) -> ConfigError:
        return ConfigError(f"{value_source(str(exc), where, overrides)}: {exc}")

    try:
        resolve_data_paths(data)
        contract = None
        if data.get("init_from"):
            model_from_init(data)
        else:
            contract = model_from_contract(data)
    except ConfigError as exc:
        raise located(exc) from None
    cfg = config_from_dict(TrainConfig, data, where, overrides)  # names its own source
    try:
        if check_checkpoints and cfg.init_from is None:
            check_against_checkpoints(cfg.model)  # a path that does not exist, before comparing checkpoints
        if check_checkpoints and contract is not None:
            check_against_contract(cfg.model, contract)  # compares checkpoint fingerprints: reads the checkpoints
    except ConfigError as exc:
        raise located(exc) from None
    if cfg.init_from is None:
        cfg.model = portable_model_config(cfg.model)
    return cfg


def resolve_data_paths(data: dict) -> None:
    """data.train / data.eval: `registry:NAME` replaced by the entry's path (its data_root filling data.data_root)."""
    from emoreason.dataset_registry import resolve_path

    section = data.get("data")
    if not isinstance(section, dict):
        return
    roots = {}
    for key in ("train", "eval"):
        value = section.get(key)
        if not isinstance(value, str):
            continue
        section[key], entry = resolve_path(value, f"data.{key}")
        if entry is None:
            continue
        if key == "train" and entry.split == "test":
            raise ConfigError(f"key 'data.train': {entry.describe()} is the test split; train on a train split")
        if entry.data_root is not None:
            roots[key] = str(entry.data_root)
    if roots and not section.get("data_root"):
        if len(set(roots.values())) > 1:
            raise ConfigError(f"key 'data.data_root': the registry entries of data.train and data.eval have different data roots "
                              f"({roots['train']} and {roots['eval']}); set data.data_root")
        section["data_root"] = next(iter(roots.values()))


def check_data_files(cfg: TrainConfig) -> None:
    """The samples files exist: checked before training starts (a config may name files yet to be written)."""
    for key, path in (("train", cfg.data.train), ("eval", cfg.data.eval)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"key 'data.{key}': no such samples file: {path}")


def portable_model_config(model: ModelConfig) -> ModelConfig:
    """Local checkpoint paths made absolute, so the saved model and its exports load from any working directory."""
    from emoreason.features.contract import absolute_model_ref

    encoders = {m: dataclasses.replace(e, model=absolute_model_ref(e.model)) for m, e in model.encoders.items()}
    return dataclasses.replace(model, llm=absolute_model_ref(model.llm), encoders=encoders)
