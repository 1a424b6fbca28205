"""The prep -> train contract: the Featurizer settings that made a folder of cached features.

`emoreason prep` writes `featurizer.json` beside its `samples.jsonl`: per modality the encoder settings
and the checkpoint's content fingerprint, and the media settings (frame sampling, face crops, audio
limits). Training on those features (`feature_source=cache`) reads it back and either takes its
encoder and media settings from it or refuses a config that disagrees, naming the key and both
values, before any weights load. So a model can only be trained on features its own encoders and
media settings would produce, which is what it will see live when served.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emoreason.atomic import write_json_atomic
from emoreason.config import ConfigError, config_from_dict
from emoreason.encoders.config import EncoderConfig
from emoreason.features.media_config import MediaConfig

CONTRACT_FILE = "featurizer.json"
CONTRACT_VERSION = 1


@dataclasses.dataclass
class FeaturizerSettings:
    """What a Featurizer was built from: one shape for prep, training and a saved model."""

    encoders: dict[str, EncoderConfig]
    media: MediaConfig


def absolute_model_ref(model: str, base: str | os.PathLike | None = None) -> str:
    """A local checkpoint path made absolute (so a record stays valid from any working directory); hub ids unchanged."""
    path = Path(base or ".") / Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def contract_record(settings: FeaturizerSettings) -> dict[str, Any]:
    from emoreason.encoders.frozen import model_fingerprint

    encoders = {}
    for modality, enc in settings.encoders.items():
        enc = dataclasses.replace(enc, model=absolute_model_ref(enc.model))
        encoders[modality] = {"config": dataclasses.asdict(enc), "fingerprint": model_fingerprint(enc.model)}
    return {"format_version": CONTRACT_VERSION, "encoders": encoders, "media": dataclasses.asdict(settings.media)}


def write_contract(out_dir: str | os.PathLike, settings: FeaturizerSettings) -> Path:
    path = Path(out_dir) / CONTRACT_FILE
    write_json_atomic(path, contract_record(settings))
    return path


@dataclasses.dataclass
class PrepContract:
    path: Path
    settings: FeaturizerSettings
    fingerprints: dict[str, str]
    """modality -> content fingerprint of the encoder checkpoint prep ran."""


def contract_path(samples_file: str | os.PathLike) -> Path:
    return Path(samples_file).parent / CONTRACT_FILE


def read_contract(samples_file: str | os.PathLike) -> PrepContract | None:
    """The contract beside a samples file, or None when that file was not written by prep."""
    path = contract_path(samples_file)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable featurizer record ({exc}); re-run `emoreason prep`") from None
    if not isinstance(record, dict) or record.get("format_version") != CONTRACT_VERSION:
        raise ConfigError(f"{path}: format_version {record.get('format_version') if isinstance(record, dict) else None!r}, "
                          f"this emoreason reads {CONTRACT_VERSION}; re-run `emoreason prep`")
    encoders = {m: config_from_dict(EncoderConfig, e["config"], f"{path}: encoders.{m}") for m, e in record["encoders"].items()}
    media = config_from_dict(MediaConfig, record["media"], f"{path}: media")
    fingerprints = {m: str(e["fingerprint"]) for m, e in record["encoders"].items()}
    return PrepContract(path, FeaturizerSettings(encoders, media), fingerprints)


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}", v))
        return out
    return {prefix: value}


# Encoder fields that shape the features; `model` is compared through the checkpoint's fingerprint, so
# the same checkpoint spelled as another path agrees.
_COMPARED_ENCODER_FIELDS = ("layer", "pooling", "dtype")


def check_agreement(settings: FeaturizerSettings, contract: PrepContract, modalities: list[str], prefix: str = "model.") -> None:
    """ConfigError naming the first key where a training config disagrees with the prep that made its features."""
    from emoreason.encoders.frozen import model_fingerprint

    where = f"prep wrote {contract.path}"
    for modality in modalities:
        key = f"{prefix}encoders.{modality}"
        if modality not in contract.settings.encoders:
            raise ConfigError(f"key '{key}': the model has a {modality} projector but {where} with no {modality} encoder "
                              f"(it ran {sorted(contract.settings.encoders)})")
        ours, theirs = settings.encoders.get(modality), contract.settings.encoders[modality]
        if ours is None:
            continue
        for field in _COMPARED_ENCODER_FIELDS:
            if getattr(ours, field) != getattr(theirs, field):
                raise ConfigError(f"key '{key}.{field}': the config says {getattr(ours, field)!r} but {where} "
                                  f"with {getattr(theirs, field)!r}; the cached features were made with prep's value")
        if model_fingerprint(absolute_model_ref(ours.model)) != contract.fingerprints[modality]:
            raise ConfigError(f"key '{key}.model': the config's checkpoint {ours.model!r} differs from the one in which "
                              f"{where} ({theirs.model!r}): other weights, other features")
    ours_media = _flatten(f"{prefix}media", _media_sections(settings.media, modalities))
    theirs_media = _flatten(f"{prefix}media", _media_sections(contract.settings.media, modalities))
    for key, value in ours_media.items():
        if theirs_media.get(key) != value:
            raise ConfigError(f"key '{key}': the config says {value!r} but {where} with {theirs_media.get(key)!r}; "
                              "the cached features were made with prep's value")


def _media_sections(media: MediaConfig, modalities: list[str]) -> dict[str, Any]:
    """The media settings that shape these modalities' features (the sections Featurizer.settings keys on)."""
    sections: dict[str, Any] = {}
    if "audio" in modalities:
        sections["audio"] = dataclasses.asdict(media.audio)
    if any(m != "audio" for m in modalities):
        sections["video"] = dataclasses.asdict(media.video)
    if "face" in modalities:
        sections["faces"] = dataclasses.asdict(media.faces)
    return sections
