"""What the Featurizer hands back: the features, why a modality is missing (`Absence`), and a sample between
`Featurizer.decode` and `Featurizer.encode` (`Decoded`), plus the one setup-fault error (`EncoderLoadError`)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from emoreason.media.errors import MediaError
from emoreason.schema import FaceRecord

# Reasons that say what a readable file lacks, not that the file is broken: the modality is just absent.
ABSENT_REASONS = frozenset({"no_audio", "no_video", "no_face", "no_landmarks", "empty"})

MediaFiles = Mapping[str, "Path | MediaError"]
"""Media kind ("video", "audio", "image") -> its file, or the MediaError that already refused it (a path
outside the data root); at most one file per kind."""


class EncoderLoadError(RuntimeError):
    """An encoder (or the face detector) that cannot be loaded: a setup fault, never the media's."""

    def __init__(self, modality: str, model: str, cause: BaseException, key: str | None = None):
        self.modality, self.model = modality, model
        key = key or f"encoders.{modality}.model"
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        hint = ""
        if not os.path.isabs(model) and ("/" in model.strip("/").split("/", 1)[-1] or model.startswith(".")):
            hint = (f"; a relative path is read from the working directory ({os.getcwd()}): model directories "
                    "written by this version record absolute paths, so re-train or edit the path")
        super().__init__(f"key '{key}': cannot load {model!r} ({type(cause).__name__}: {detail[:300]}){hint}")


@dataclasses.dataclass(frozen=True)
class Absence:
    """Why one modality of a sample has no features."""

    modality: str
    reason: str
    """A key of emoreason.media.errors.REASONS."""
    message: str
    fault: bool = True
    """True when the input is at fault (a missing, corrupt or over-long file), not merely lacking the modality."""
    error: MediaError | None = dataclasses.field(default=None, compare=False, repr=False)
    """The error behind a fault, re-raised as it was by `Featurized.raise_for_fault`."""

    def to_json(self) -> dict[str, str]:
        return {"modality": self.modality, "reason": self.reason, "message": self.message}

    @classmethod
    def from_error(cls, modality: str, exc: MediaError, file_checked: bool = True) -> Absence:
        # check_file's "empty" is a zero-length file (a fault); after it passed, "empty" is an empty track.
        fault = not file_checked or exc.reason not in ABSENT_REASONS
        return cls(modality, exc.reason, str(exc), fault=fault, error=exc)


@dataclasses.dataclass
class Featurized:
    """The projector model's inputs for one sample, and why any modality is missing."""

    features: dict[str, torch.Tensor]
    """modality -> [t, d] fp16, exactly as the feature cache stores it."""
    absent: dict[str, Absence]
    faces: FaceRecord | None = None
    """Which sampled frames had a face (when the face modality ran)."""
    frames_decoded: int = 0
    """Frames decoded by this call (0 when every visual feature came from the cache)."""
    cache_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    """modality -> feature-cache key, when the Featurizer has a cache."""

    def faults(self) -> list[Absence]:
        return [a for a in self.absent.values() if a.fault]

    def raise_for_fault(self) -> None:
        """MediaError for the first fault: the request's media is unusable, not just lacking a modality."""
        for absence in self.faults():
            raise absence.error or MediaError(absence.reason, None, absence.message)


@dataclasses.dataclass
class Decoded:
    """A sample between `Featurizer.decode` and `Featurizer.encode`: what is known so far, and the encoder inputs."""

    result: Featurized
    """Cache hits, absences and the face record found while decoding."""
    sample_id: str | None = None
    pending: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    """modality -> its encoder's input, in compute order: a waveform [n], frames or face crops [n, h, w, 3],
    landmarks [k, 68, 2]."""

