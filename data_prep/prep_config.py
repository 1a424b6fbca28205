"""The `emoreason prep` config: where samples come from, how media is decoded, which encoders run."""

from __future__ import annotations

import dataclasses
from typing import Any

from emoreason.config import check
from emoreason.constants import MODALITIES
from emoreason.encoders.config import EncoderConfig
from emoreason.media.video import FrameSampling


@dataclasses.dataclass
class FaceCropConfig:
    detector: str = "haar"
    """'haar' (OpenCV's shipped cascade) or 'package.module:Class' for a plug-in detector."""
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
class PrepConfig:
    input: str
    """Schema JSONL, or a manifest: CSV with an `id` column and media columns, or a text file of paths."""
    output_dir: str
    """Receives samples.jsonl (samples with feature references), status.jsonl and report.json."""
    encoders: dict[str, EncoderConfig]
    """Frozen encoder per modality (audio, face, video, frame); only these modalities are computed."""
    data_root: str | None = None
    """Media paths are relative to this; defaults to the input file's folder."""
    feature_cache: str | None = None
    """Feature cache folder, shareable between runs; defaults to <output_dir>/features."""
    workers: int = 1
    """Worker processes; 1 runs in this process."""
    video: FrameSampling = dataclasses.field(default_factory=FrameSampling)
    audio: AudioDecodeConfig = dataclasses.field(default_factory=AudioDecodeConfig)
    faces: FaceCropConfig = dataclasses.field(default_factory=FaceCropConfig)
    required_modalities: list[str] = dataclasses.field(default_factory=list)
    """A sample missing one of these fails; otherwise a sample missing some modality is written as partial."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        check(bool(self.encoders), "encoders", f"at least one encoder, keyed by modality among {list(MODALITIES)}")
        for modality in self.encoders:
            check(modality in MODALITIES, f"encoders.{modality}", f"a modality among {list(MODALITIES)}", modality)
        for modality in self.required_modalities:
            check(modality in self.encoders, "required_modalities", f"modalities that have an encoder ({sorted(self.encoders)})", modality)
        check(self.workers >= 1, "workers", "an integer >= 1", self.workers)
