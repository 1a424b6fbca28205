"""A briefly trained tiny model and its export, built once per test session for the serving tests.

30 steps of the tiny recipe (~20-30 s on 2 CPU cores) are enough for a LoRA that moved away from
zero and answers some clips with a label; the serving tests check plumbing, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

from emoreason.model.loading import MODEL_FILE

TRAIN_STEPS = 30


def trained_model_dir(tiny_data, tmp_path_factory) -> Path:
    from emoreason.demo import train_tiny

    final = tmp_path_factory.getbasetemp() / "serving_tiny_train" / "model"
    if not (final / MODEL_FILE).exists():
        train_tiny(tiny_data, final.parent, [f"optim.max_steps={TRAIN_STEPS}", "optim.resume=false"])
    return final


def exported_model_dir(tiny_data, tmp_path_factory) -> Path:
    from emoreason.serving.export import export_model

    out = tmp_path_factory.getbasetemp() / "serving_tiny_export"
    if not (out / MODEL_FILE).exists():
        export_model(trained_model_dir(tiny_data, tmp_path_factory), out)
    return out


def clips_dir(tiny_data) -> Path:
    return tiny_data.train.parent.parent / "data" / "clips"
