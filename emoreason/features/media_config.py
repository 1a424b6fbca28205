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
    detect_every: int = 1
    """Run the detector on every k-th sampled frame (0, k, 2k, ...) and give the frames between the box of the
    last detection; 1 detects on every frame. Cheaper detection changes the crops, so it is part of the cache
    key and of featurizer.json (docs/serving.md, "Cheaper face detection", for the measured differences)."""
    detect_short_side: int | None = None
    """Detect on a copy of the frame whose shorter side has this many pixels (boxes scaled back; crops still
    come from the full frame); null detects at full size."""

    def __post_init__(self) -> None:
        check(0 <= self.margin <= 2, "margin", "a number in [0, 2]", self.margin)
        check(self.size >= 16, "size", "an integer >= 16", self.size)
        check(isinstance(self.detect_every, int) and not isinstance(self.detect_every, bool) and self.detect_every >= 1,
              "detect_every", "an integer >= 1", self.detect_every)
        check(self.detect_short_side is None or (isinstance(self.detect_short_side, int) and self.detect_short_side >= 16),
              "detect_short_side", "null or an integer >= 16", self.detect_short_side)

    def key_settings(self) -> dict[str, Any]:
        """The settings that shape the crops, for a cache key: the cheaper-detection fields only when set, so
        caches keyed before they existed stay valid (as EncoderConfig.settings_fingerprint drops its defaults)."""
        settings = dataclasses.asdict(self)
        for name, default in (("detect_every", 1), ("detect_short_side", None)):
            if settings[name] == default:
                del settings[name]
        return settings


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
