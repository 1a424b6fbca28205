"""What `emoreason train` does with an output_dir that already holds a run: refuse, resume, or start anew.

- A finished run (`<output_dir>/model` complete, by the marker written after its last file) is refused:
  training it again would change nothing (the Trainer resumes at its last step and stops), and its
  record would no longer describe its weights. `--overwrite` (`optim.overwrite=true`) trains anew there.
- An unfinished run (checkpoints, no complete model) resumes from its newest complete checkpoint, if
  the saved `train_config.yaml` agrees with this one on every key that shapes the weights; a key that
  differs is named with both values. Keys that only extend or watch the run (max_steps, logging...)
  may change; the record keeps the values the run started with.
- `train_config.yaml` is written once, when a run starts; never over a past run's.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emoreason.config import config_to_dict
from emoreason.train import checkpoints
from emoreason.train.config import TrainConfig

FINAL_MODEL_DIR = "model"
CONFIG_FILE = "train_config.yaml"
LOSS_CURVE_FILE = "loss_curve.png"

# Keys a resumed run may change: they set how long it goes on, or how it is watched and saved,
# not what the weights trained so far mean.
RESUMABLE_KEYS = frozenset({
    "data.eval",
    "optim.output_dir",  # the run folder moved: still the same run
    "optim.max_steps",
    "optim.num_epochs",
    "optim.resume",
    "optim.overwrite",
    "optim.save_steps",
    "optim.save_total_limit",
    "optim.logging_steps",
    "optim.eval_steps",
    "optim.eval_generate_samples",
    "optim.eval_max_new_tokens",
    "optim.num_workers",
    "optim.report_to",
    # Where the judge answers, not what it scores (grpo.judge.model and template stay fixed): a judge that
    # went down mid-run may come back at another address.
    "grpo.judge.base_url",
    "grpo.judge.api_key_env",
    "grpo.judge.max_retries",
    "grpo.judge.timeout",
})


class RunFolderError(ValueError):
    """optim.output_dir holds a run this command must not continue; the message says what to do instead."""


@dataclass
class RunPlan:
    output_dir: Path
    resume_from: str | None = None
    """The checkpoint to continue from, or None to start at step 0."""
    clear: bool = False
    """Remove the previous run's files first (--overwrite)."""
    write_config: bool = True
    """Write train_config.yaml (a new run, or a resumed one that never had it)."""
    notes: list[str] = field(default_factory=list)


def model_incomplete_reason(output_dir: str | Path) -> str | None:
    """None when <output_dir>/model is a complete final model, else why not."""
    final = Path(output_dir) / FINAL_MODEL_DIR
    if not final.is_dir():
        return f"{final} does not exist"
    return checkpoints.incomplete_reason(final)


def mark_finished(output_dir: str | Path, step: int) -> None:
    """Mark <output_dir>/model complete; called once every file of the final model is written."""
    checkpoints.write_marker(Path(output_dir) / FINAL_MODEL_DIR, step)


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


def _as_saved(cfg: TrainConfig) -> dict[str, Any]:
    """The config as train_config.yaml holds it (a YAML round trip: tuples are lists, floats as written)."""
    return yaml.safe_load(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def config_differences(saved: dict[str, Any], cfg: TrainConfig) -> list[tuple[str, Any, Any]]:
    """(key, saved value, this run's value) for every key that differs, in the config's order."""
    ours, theirs = _flatten("", _as_saved(cfg)), _flatten("", saved)
    keys = list(ours) + [k for k in theirs if k not in ours]
    missing = object()
    return [(k, theirs.get(k, missing), ours.get(k, missing)) for k in keys if theirs.get(k, missing) != ours.get(k, missing)]


def _shown(value: Any) -> str:
    return "(not set)" if not isinstance(value, (str, int, float, bool, list, dict, type(None))) else repr(value)


def check_resumable(saved_path: Path, cfg: TrainConfig) -> list[str]:
    """Refuse a resume whose config differs on a key that shapes the weights; notes for the keys that may differ."""
    try:
        saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RunFolderError(f"{saved_path}: unreadable record of the run to resume ({exc}); "
                             "train anew with --overwrite, or choose another optim.output_dir") from None
    if not isinstance(saved, dict):
        raise RunFolderError(f"{saved_path}: expected a mapping, got {type(saved).__name__}; train anew with --overwrite")
    notes = []
    for key, before, now in config_differences(saved, cfg):
        if key in RESUMABLE_KEYS:
            notes.append(f"resuming with {key}={_shown(now)} (the run started with {_shown(before)}; {saved_path.name} keeps that)")
            continue
        raise RunFolderError(
            f"{cfg.optim.output_dir}: cannot resume this unfinished run: key '{key}' is {_shown(now)} here but "
            f"{_shown(before)} in its {saved_path}; run the same config to resume it, train anew there with "
            "--overwrite, or choose another optim.output_dir"
        )
    return notes


def _previous_run_files(out: Path) -> list[Path]:
    names = [FINAL_MODEL_DIR, CONFIG_FILE, LOSS_CURVE_FILE]
    found = [out / n for n in names if (out / n).exists()]
    return found + checkpoints.checkpoints_newest_first(out) + sorted(out.glob(f"{checkpoints.STAGING_PREFIX}*"))


def plan_run(cfg: TrainConfig) -> RunPlan:
    """Decide, without changing anything, how this command uses optim.output_dir; RunFolderError to refuse."""
    out = Path(cfg.optim.output_dir)
    plan = RunPlan(out)
    if not out.is_dir():
        return plan
    previous = _previous_run_files(out)
    if cfg.optim.overwrite:
        if previous:
            plan.clear = True
            plan.notes.append(f"--overwrite: removing the previous run in {out} ({', '.join(p.name for p in previous)})")
        return plan
    model_reason = model_incomplete_reason(out)
    if model_reason is None:
        raise RunFolderError(
            f"{out} holds a finished run ({out / FINAL_MODEL_DIR}); it is left as it is. Train anew there with "
            "--overwrite (optim.overwrite=true), or choose another optim.output_dir"
        )
    found = checkpoints.checkpoints_newest_first(out)
    if not cfg.optim.resume:
        if found or (out / FINAL_MODEL_DIR).exists():
            raise RunFolderError(
                f"{out} holds an unfinished run ({', '.join(p.name for p in found) or FINAL_MODEL_DIR}) and optim.resume "
                "is false: resume it (optim.resume=true), train anew there with --overwrite, or choose another optim.output_dir"
            )
        return plan
    plan.resume_from = checkpoints.last_complete_checkpoint(out) if found else None
    if (out / FINAL_MODEL_DIR).exists():
        plan.notes.append(f"{out / FINAL_MODEL_DIR} is incomplete ({model_reason}); it is written again at the end")
    saved = out / CONFIG_FILE
    if plan.resume_from is not None:
        plan.notes.append(f"resuming from {plan.resume_from}")
        if saved.exists():
            plan.notes += check_resumable(saved, cfg)
            plan.write_config = False
    return plan


def apply_plan(plan: RunPlan) -> None:
    """Clear the previous run when asked to (main process only)."""
    if plan.clear:
        for path in _previous_run_files(plan.output_dir):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def print_notes(plan: RunPlan) -> None:
    for note in plan.notes:
        print(f"emoreason train: {note}", file=sys.stderr)


def open_run(trainer, cfg, plan: RunPlan, summary=None) -> bool:
    """Start a planned run on every rank; True on the main process.

    The main process prints the plan's notes, applies it (an overwrite clears the folder), writes
    train_config.yaml once per run and prints `summary()` when given; every rank then waits for it.
    """
    from emoreason.config import save_config

    main_process = trainer.is_world_process_zero()
    if main_process:
        print_notes(plan)
        apply_plan(plan)
        if plan.write_config:
            save_config(cfg, Path(cfg.optim.output_dir) / CONFIG_FILE)
        if summary is not None:
            print(summary(), flush=True)
    trainer.accelerator.wait_for_everyone()
    return main_process


def finish_run(trainer, output_dir: str | Path, main_process: bool) -> Path:
    """Write the final model (every rank: ZeRO-3 gathers first; only the main process writes) and mark the run finished."""
    final = Path(output_dir) / FINAL_MODEL_DIR
    trainer.save_model(str(final))
    if main_process:
        mark_finished(output_dir, trainer.state.global_step)
    return final


def train_in_folder(trainer, cfg, plan: RunPlan, summary=None) -> Path:
    """Every stage's and kind's run: open the planned run, train (from plan.resume_from when it resumes), then
    write and mark the final model; returns <output_dir>/model."""
    main_process = open_run(trainer, cfg, plan, summary=summary)
    trainer.train(resume_from_checkpoint=plan.resume_from)
    return finish_run(trainer, cfg.optim.output_dir, main_process)
