"""What a model directory may ask for, and what only the user can allow.

A model directory is data: it arrives from a colleague, a download or a shared drive, and loading
it must not run code. Two settings in its `emoreason_model.json` would: a face detector named
"package.module:ClassName" (importing the module runs it, constructing the class runs more) and
`trust_remote_code` (transformers imports the Python files an `auto_map` in a checkpoint names).
Both are honoured only from the user: their own train config, or `--face-detector` and
`--trust-remote-code` on the command line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emoreason.config import ConfigError
from emoreason.media.faces import BUILTIN_FACE_DETECTORS, FaceDetector
from emoreason.plugins import resolve_plugin_class

DETECTOR_KEY = "media.faces.detector"


class UntrustedModelError(ConfigError):
    """A model directory asked for something that would run code the user has not allowed."""


@dataclasses.dataclass(frozen=True)
class UserTrust:
    """What the user (never the model directory) allows while a model loads."""

    trust_remote_code: bool = False
    """Let transformers run Python code shipped with the LLM, tokenizer or encoder checkpoints."""
    face_detector: str | None = None
    """Face detector to use instead of the directory's: a built-in name or "package.module:ClassName"."""
    face_detector_args: dict[str, Any] | None = None
    """Constructor keyword arguments for `face_detector` (default none)."""

    def __post_init__(self) -> None:
        if self.face_detector_args is not None and self.face_detector is None:
            raise ConfigError("face detector arguments were given without a face detector to pass them to")

    @classmethod
    def from_config(cls, config) -> UserTrust:
        """Everything a config of the user's own (a train YAML's `model`) names is theirs to allow."""
        faces = config.media.faces
        return cls(config.trust_remote_code, faces.detector, dict(faces.detector_args))


def apply_user_trust(config, source: Path, trust: UserTrust | None):
    """The ModelConfig read from `source` with the user's choices applied, or UntrustedModelError.

    trust_remote_code is the user's flag everywhere (LLM and every encoder): a directory that sets
    it without the flag is refused, and the flag lets checkpoints load that need it.
    """
    trust = trust or UserTrust()
    asked = ["trust_remote_code"] if config.trust_remote_code else []
    asked += [f"encoders.{m}.trust_remote_code" for m, enc in config.encoders.items() if enc.trust_remote_code]
    if asked and not trust.trust_remote_code:
        raise UntrustedModelError(
            f"{source}: key {', '.join(repr(k) for k in asked)} asks to run Python code shipped with its checkpoints "
            "(trust_remote_code: true); refused, nothing was imported. If you trust this model directory, "
            "pass --trust-remote-code"
        )
    faces = config.media.faces
    if trust.face_detector is not None:
        # The user's own choice may be imported now: a typo or a wrong class fails here, not on the first clip.
        try:
            resolve_plugin_class(trust.face_detector, FaceDetector, BUILTIN_FACE_DETECTORS, "face detector")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        faces = dataclasses.replace(faces, detector=trust.face_detector, detector_args=dict(trust.face_detector_args or {}))
    elif faces.detector not in BUILTIN_FACE_DETECTORS:
        raise UntrustedModelError(
            f"{source}: key '{DETECTOR_KEY}' names the plug-in {faces.detector!r}; a model directory may only name "
            f"a built-in detector ({', '.join(sorted(BUILTIN_FACE_DETECTORS))}), so it was not imported. "
            "Choose the detector yourself: --face-detector haar, or --face-detector package.module:ClassName "
            "(with --face-detector-args '{\"key\": value}') for a detector you trust"
        )
    encoders = {m: dataclasses.replace(enc, trust_remote_code=trust.trust_remote_code) for m, enc in config.encoders.items()}
    media = dataclasses.replace(config.media, faces=faces)
    return dataclasses.replace(config, trust_remote_code=trust.trust_remote_code, encoders=encoders, media=media)


@contextlib.contextmanager
def remote_code_refusals(model_dir: Path) -> Iterator[None]:
    """Name our flag when transformers refuses a checkpoint's custom code (an auto_map it cannot load without it)."""
    try:
        yield
    except ValueError as exc:
        if "trust_remote_code=True" not in str(exc):
            raise
        raise UntrustedModelError(
            f"{model_dir}: a checkpoint there needs its own Python code to load (an auto_map); refused, nothing was "
            f"imported. If you trust this model directory, pass --trust-remote-code. transformers said: {exc}"
        ) from None


def parse_detector_args(text: str, option: str = "--face-detector-args") -> dict[str, Any]:
    """A JSON object of constructor arguments, as given on a command line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{option}: expected a JSON object such as '{{\"min_neighbors\": 3}}', got {text!r} ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option}: expected a JSON object, got {text!r}")
    return value
