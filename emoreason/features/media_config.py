"""How media becomes encoder input: frame sampling, face crops, audio limits.

Shared by `emoreason prep` (cached features) and the model's live path (serving), so both
produce the same encoder inputs from the same clip.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from emoreason.config import check
from emoreason.media.video import FrameSampling


@dataclasses.dataclass
class FaceCropConfig:
    detector: str = "haar"
    """'haar' (OpenCV's shipped cascade) or 'package.module:Class' of a FaceDetector subclass. A plug-in
    is honoured from the user's own prep or train config; a model directory may name only 'haar'."""
    detector_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments for the detector's constructor."""
    margin: float = 0.2
    """Fraction of the face box added on each side before cropping."""
    size: int = 112
    """Side of the square face crop, in pixels."""

    def __post_init__(self) -> None:
        check(0 <= self.margin <= 2, "margin", "a number in [0, 2]", self.margin)
        check(self.size >= 16, "size", "an integer >= 16", self.size)


@dataclasses.dataclass
class AudioDecodeConfig:
    max_seconds: float | None = 120.0
    """Audio longer than this is reported as too_long instead of filling memory."""

    def __post_init__(self) -> None:
        check(self.max_seconds is None or self.max_seconds > 0, "max_seconds", "null or a positive number", self.max_seconds)


@dataclasses.dataclass
class MediaConfig:
    video: FrameSampling = dataclasses.field(default_factory=FrameSampling)
    audio: AudioDecodeConfig = dataclasses.field(default_factory=AudioDecodeConfig)
    faces: FaceCropConfig = dataclasses.field(default_factory=FaceCropConfig)
