"""Where a results file came from: inputs by content hash, model config hash, judge and versions, date."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from emoreason import __version__


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_config_hash(model_dir: str | Path) -> str:
    """sha256 of the model's config (emoreason_model.json or, for a native model, emoreason_native.json; keys
    sorted), so equal configs hash equal."""
    from emoreason.model_kinds import kind_of_dir

    try:
        path = Path(model_dir) / kind_of_dir(model_dir).marker
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--model {exc}") from None
    config = json.loads(path.read_text())
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def provenance(
    predictions: Path,
    references: Path,
    model: str | None,
    config_hash: str | None,
    taxonomy_version: str | None,
    judge_model: str | None = None,
    judge_prompt_version: str | None = None,
) -> dict:
    return {
        "predictions": str(predictions),
        "predictions_sha256": file_sha256(predictions),
        "references": str(references),
        "references_sha256": file_sha256(references),
        "model": model,
        "config_hash": config_hash,
        "judge_model": judge_model,
        "judge_prompt_version": judge_prompt_version,
        "taxonomy_version": taxonomy_version,
        "emoreason_version": __version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
