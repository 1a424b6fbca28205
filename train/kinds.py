"""Training's half of the model-kind registry (emoreason.model_kinds): `model.kind` -> config loader and run.

`emoreason train` reads the config once, looks its kind up here and never branches on it.
"""

from __future__ import annotations

from emoreason.model_kinds import kind_of_config, load_ref

# kind -> ("module:load_config(path, overrides)", "module:run_config(cfg) -> exit status")
TRAIN_KINDS: dict[str, tuple[str, str]] = {
    "projector": ("emoreason.train.config:load_train_config", "emoreason.train.run:run_config"),
    "native": ("emoreason.train.native_config:load_native_train_config", "emoreason.train.native_run:run_config"),
}
# kind -> "module:run(cfg) -> exit status" of stage grpo (TRL's GRPOTrainer with that kind's hooks, docs/grpo.md)
GRPO_RUNS: dict[str, str] = {
    "projector": "emoreason.train.grpo_run:run_grpo_config",
    "native": "emoreason.train.native_grpo_run:run_native_grpo_config",
}


def load_any_train_config(path: str | None, overrides: list[str] | None = None):
    """The validated train config of whichever kind `model.kind` names (default projector)."""
    from emoreason.config import read_config_data

    kind = kind_of_config(read_config_data(path, overrides or []))
    return load_ref(TRAIN_KINDS[kind.name][0])(path, overrides or [])


def run_any_config(cfg) -> int:
    kind = getattr(cfg.model, "kind", "projector")
    run = GRPO_RUNS[kind] if cfg.stage == "grpo" else TRAIN_KINDS[kind][1]
    return load_ref(run)(cfg)
