"""Where a training run's `model:` settings come from: the YAML, an `init_from` model, or prep's contract.

- With `init_from`, the model is the loaded one: the `model:` block may be left out, and a key given
  beside `init_from` that disagrees with the loaded model is refused by name (it would be ignored).
- With `data.feature_source: cache`, the encoders and media settings that made the features are in
  prep's `featurizer.json` beside `data.train`: they fill what the YAML leaves out (projectors default
  to an `mlp` per prepped modality), and a value that disagrees is refused, naming the key and both
  values, before any weights load.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from emoreason.config import ConfigError
from emoreason.features.contract import FeaturizerSettings, PrepContract, check_agreement, read_contract

MODEL_FILE = "emoreason_model.json"  # the model directory's config (emoreason.model.loading.MODEL_FILE)


def _given(prefix: str, value: Any) -> dict[str, Any]:
    """Flattened keys the user actually set (a null is a placeholder, not a value)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_given(f"{prefix}.{k}", v))
        return out
    return {} if value is None else {prefix: value}


def _lookup(tree: Any, dotted: str) -> Any:
    for part in dotted.split(".")[1:]:
        if not isinstance(tree, dict) or part not in tree:
            return dataclasses.MISSING
        tree = tree[part]
    return tree


def _same(theirs: Any, ours: Any, model_dir: Path) -> bool:
    if theirs == ours:
        return True
    # The same checkpoint spelled as another path (relative here, absolute in the saved model; or the
    # exported model's own llm/ folder) is the same setting.
    if isinstance(theirs, str) and isinstance(ours, str):
        candidates = [Path(theirs), model_dir / theirs]
        mine = Path(ours)
        return mine.exists() and any(c.exists() and c.resolve() == mine.resolve() for c in candidates)
    return False


def model_from_init(data: dict[str, Any]) -> None:
    """Replace data['model'] by the init_from model's config, refusing any given key that disagrees."""
    init_from = Path(data["init_from"])
    path = init_from / MODEL_FILE
    if not path.exists():
        raise ConfigError(f"key 'init_from': {init_from} is not an emoreason model directory ({MODEL_FILE} is missing)")
    loaded = json.loads(path.read_text(encoding="utf-8"))["config"]
    for key, value in _given("model", data.get("model")).items():
        theirs = _lookup(loaded, key)
        if theirs is dataclasses.MISSING or not _same(theirs, value, init_from):
            shown = "no such setting" if theirs is dataclasses.MISSING else repr(theirs)
            raise ConfigError(f"key '{key}': the config says {value!r} but init_from {init_from} has {shown}; "
                              f"with init_from the model is the loaded one: drop '{key}' or start without init_from")
    data["model"] = loaded


def _merge(base: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(base)
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif value is not None:
            out[key] = value
    return out


def model_from_contract(data: dict[str, Any]) -> PrepContract | None:
    """Fill data['model'] from prep's featurizer.json beside data.train; the contract, or None without one."""
    train = (data.get("data") or {}).get("train")
    if not train or (data.get("data") or {}).get("feature_source", "cache") != "cache":
        return None
    contract = read_contract(train)
    if contract is None:
        if not Path(train).exists() and not (data.get("model") or {}).get("encoders"):
            # Else the user would be told the encoders are missing, when it is the file that holds them.
            raise ConfigError(f"key 'data.train': no such samples file: {train} (its folder's featurizer.json gives the encoders)")
        return None
    model = data.get("model") or {}
    prepped = {m: dataclasses.asdict(e) for m, e in contract.settings.encoders.items()}
    modalities = list(model.get("projectors") or prepped)
    if (model.get("landmark_attention") or {}).get("enabled") and "landmarks" in prepped and "landmarks" not in modalities:
        modalities.append("landmarks")  # read by the landmark attention, which needs no landmarks projector
    encoders = dict(model.get("encoders") or {})
    for m in modalities:
        if m in prepped:
            encoders[m] = _merge(prepped[m], encoders.get(m))
    model["encoders"] = encoders
    model.setdefault("projectors", None)
    if model["projectors"] is None:
        model["projectors"] = {m: {"kind": "mlp"} for m in modalities}
    model["media"] = _merge(dataclasses.asdict(contract.settings.media), model.get("media"))
    data["model"] = model
    return contract


def check_against_contract(model_config, contract: PrepContract) -> None:
    """Prep's settings against the model's, for the modalities read from the cache: a LoRA-tuned encoder's
    features are computed in training from the media, never read from prep's cache."""
    settings = FeaturizerSettings(model_config.encoders, model_config.media)
    cached = [m for m in model_config.modalities if not model_config.encoders[m].train.trainable]
    check_agreement(settings, contract, cached)
