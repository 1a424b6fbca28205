"""NativeTrainConfig: `emoreason train` for `model.kind: native` (a backbone tuned per component).

The same data and optim blocks as the projector model's TrainConfig (emoreason.train.config); the
model block is emoreason.native.config.NativeModelConfig. Stages map onto component choices:

- `instruct`: the components as configured (`model.components`);
- `align`: only the connector trains (its configured mode, or `full`); the LLM and the towers stay
  frozen, as stage align freezes the projector model's LLM;
- `grpo`: reinforcement learning from a supervised native model (init_from) with the `grpo:` rewards;
  the model block defaults to init_from's own (backbone, media settings), and a fresh LoRA
  (`grpo.lora`) trains on its LLM (emoreason.train.native_grpo_run, docs/grpo.md).

The backbone's config is read (no weights) and every component, modality and frame limit checked
before anything loads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from emoreason.config import ConfigError, check, config_from_dict, read_config_data, value_source
from emoreason.native.config import ComponentTraining, NativeModelConfig
from emoreason.train.config import DataConfig, OptimConfig
from emoreason.train.grpo_config import GRPOSettings

NATIVE_STAGES = ("align", "instruct", "grpo")


@dataclasses.dataclass
class NativeDataConfig(DataConfig):
    input_cache: str | None = None
    """Folder of processed media inputs (emoreason.native.cache), filled on the first epoch and read after;
    null: <optim.output_dir>/input_cache. Entries are keyed by media bytes and every setting, so runs may share one."""


@dataclasses.dataclass
class NativeTrainConfig:
    stage: str
    """'instruct': the components as configured. 'align': the connector alone (everything else frozen)."""
    model: NativeModelConfig
    data: NativeDataConfig
    optim: OptimConfig
    init_from: str | None = None
    """A native model directory (e.g. the align stage's) whose trained weights this run starts from."""
    grpo: GRPOSettings | None = None
    """Stage grpo only: rewards, sampling, KL and curriculum (emoreason.train.grpo_config)."""

    def __post_init__(self) -> None:
        check(self.stage in NATIVE_STAGES, "stage", f"one of {list(NATIVE_STAGES)} for model.kind native", self.stage)
        if self.stage == "grpo":
            check(self.init_from is not None, "init_from", "a supervised native model directory (stage grpo starts from one)")
            self.grpo = self.grpo or GRPOSettings()
        else:
            check(self.grpo is None, "grpo", f"no grpo block for stage {self.stage!r} (it is read by stage grpo only)")
        self.model = stage_model(self.model, self.stage)


def stage_model(model: NativeModelConfig, stage: str) -> NativeModelConfig:
    """The model config whose components are the ones `stage` trains (stage grpo's are set by its run)."""
    if stage in ("instruct", "grpo"):
        return model
    connector = model.components.get("connector")
    keep = connector if connector is not None and connector.mode != "frozen" else ComponentTraining("full")
    return dataclasses.replace(model, components={"connector": keep})


def portable(model: NativeModelConfig) -> NativeModelConfig:
    """A local backbone path made absolute, so the saved model and its export load from any working directory."""
    from emoreason.features.contract import absolute_model_ref

    return dataclasses.replace(model, base=absolute_model_ref(model.base))


def check_backbone(model: NativeModelConfig) -> None:
    """The backbone's kind, components and modalities, and the frame limit, from its config files (no weights)."""
    import transformers as tf

    from emoreason.native.model import build_processor

    if not Path(model.base).exists() and "/" not in model.base:
        raise ConfigError(f"key 'model.base': {model.base!r} is neither a local folder nor a hub id (org/name)")
    try:
        config = tf.AutoConfig.from_pretrained(model.base)
    except OSError as exc:
        raise ConfigError(f"key 'model.base': cannot read the backbone's config.json ({exc})") from None
    model.check_against_backbone(config.model_type)
    build_processor(model)  # ConfigError for more frames than the processor takes


def init_model_block(init_from: str, model: dict) -> dict:
    """Stage grpo's model block: init_from's saved one (backbone, media settings, prompt), with the keys
    the config sets on top. The components are the run's (a fresh LoRA on the LLM), so they are not read."""
    from emoreason.native.model import read_native_config, resolve_base

    try:
        saved = read_native_config(init_from)
    except FileNotFoundError as exc:
        raise ConfigError(f"key 'init_from': {exc}") from None
    block = dataclasses.asdict(dataclasses.replace(saved, base=resolve_base(saved, init_from)))
    return block | {k: v for k, v in model.items() if v is not None}


def load_native_train_config(path: str | None, overrides: list[str] | None = None, check_checkpoints: bool = True) -> NativeTrainConfig:
    overrides = overrides or []
    data = read_config_data(path, overrides)
    where = path or "<command line>"
    if data.get("stage") == "grpo" and data.get("init_from"):
        data["model"] = init_model_block(data["init_from"], data.get("model") or {})
    cfg = config_from_dict(NativeTrainConfig, data, where, overrides)
    if check_checkpoints:
        try:
            check_backbone(cfg.model)
        except ConfigError as exc:
            raise ConfigError(f"{value_source(str(exc), where, overrides)}: {exc}") from None
        cfg.model = portable(cfg.model)
    return cfg
