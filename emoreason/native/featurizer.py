"""A sample's media -> a native backbone's processed inputs, with the projector Featurizer's shape.

`NativeFeaturizer.featurize(files)` is the native counterpart of
emoreason.features.featurizer.Featurizer.featurize: the same `MediaFiles` in, a result with `.absent`
(the same `Absence` records, faults and plain absences) out, so prep, training and serving hand a
sample to either model kind the same way. Frames are sampled by emoreason's FrameSampling (decord),
audio decoded by emoreason.media.audio (PyAV, 16 kHz mono); the backbone's processor parts then make
its tensors (emoreason.native.processor).

Which file feeds which modality: `video` from a video file, `image` from a still image, `audio` from
a separate audio file or else the video's track (as for the projector model). A modality the
backbone has no tower for is not requested.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.features.featurizer import Absence, MediaFiles
from emoreason.features.media_config import AudioDecodeConfig
from emoreason.media.errors import MediaError, check_file
from emoreason.media.video import FrameSampling
from emoreason.native.processor import ModalityInputs, NativeProcessor

SOURCES: dict[str, tuple[str, ...]] = {"video": ("video",), "image": ("image",), "audio": ("audio", "video")}
_ABSENT_WHEN_NO_SOURCE = {"video": "no_video", "image": "no_video", "audio": "no_audio"}


@dataclasses.dataclass
class NativeFeaturized:
    """A native backbone's processed media for one sample, and why any modality is missing."""

    inputs: dict[str, ModalityInputs]
    absent: dict[str, Absence]
    frames_decoded: int = 0
    frame_times: list[float] = dataclasses.field(default_factory=list)

    def faults(self) -> list[Absence]:
        return [a for a in self.absent.values() if a.fault]

    def raise_for_fault(self) -> None:
        for absence in self.faults():
            raise MediaError(absence.reason, None, absence.message)


class NativeFeaturizer:
    def __init__(self, processor: NativeProcessor, frames: FrameSampling | None = None, audio: AudioDecodeConfig | None = None,
                 cache=None):
        """cache: a NativeInputCache to read and fill (prep fills it; training reads it)."""
        self.processor = processor
        self.frames = frames or FrameSampling()
        self.audio = audio or AudioDecodeConfig()
        self.cache = cache
        self._settings: dict | None = None

    def settings(self, modality: str) -> dict:
        """Every setting that shapes this modality's processed inputs (the cache key)."""
        from emoreason.native.cache import processor_settings

        if self._settings is None:
            self._settings = processor_settings(self.processor)
        if modality == "video":
            return self._settings | {"frames": dataclasses.asdict(self.frames)}
        if modality == "audio":
            return self._settings | {"audio_max_seconds": self.audio.max_seconds}
        return self._settings

    @property
    def modalities(self) -> list[str]:
        return list(self.processor.arch.modalities)

    def featurize(self, files: MediaFiles, modalities: Sequence[str] | None = None) -> NativeFeaturized:
        """Processed inputs of every requested modality the backbone takes; each succeeds or fails alone."""
        wanted = [m for m in (modalities or self.modalities) if m in self.modalities]
        out = NativeFeaturized({}, {})
        for modality in wanted:
            kind = next((k for k in SOURCES[modality] if k in files), None)
            if kind is None:
                if modality == "image" and "video" in files:
                    continue  # a clip's visual input is its video; not having a still image is not an absence
                if modality == "video" and "image" in files:
                    message = "a still image is the sample's visual input, not a video"
                else:
                    message = "sample has no " + " or ".join(f"media.{k}" for k in SOURCES[modality])
                out.absent[modality] = Absence(modality, _ABSENT_WHEN_NO_SOURCE[modality], message, fault=False)
                continue
            try:
                check_file(files[kind])
            except MediaError as exc:
                out.absent[modality] = Absence.from_error(modality, exc, file_checked=False)
                continue
            try:
                out.inputs[modality] = self._cached_or_processed(modality, Path(files[kind]), out)
            except MediaError as exc:
                out.absent[modality] = Absence.from_error(modality, exc)
        return out

    def _cached_or_processed(self, modality: str, path: Path, out: NativeFeaturized) -> ModalityInputs:
        if self.cache is None:
            return self._process(modality, path, out)
        key = self.cache.key(modality, path, self.settings(modality))
        hit = self.cache.get(modality, key)
        if hit is not None:
            item, extra = hit
            if "frame_times" in extra:
                out.frame_times = json.loads(extra["frame_times"])
            return item
        item = self._process(modality, path, out)
        self.cache.put(key, item, {"frame_times": out.frame_times} if modality == "video" else None)
        return item

    def _process(self, modality: str, path: Path, out: NativeFeaturized) -> ModalityInputs:
        if modality == "video":
            from emoreason.media.video import decode_frames

            decoded = decode_frames(path, self.frames)
            out.frames_decoded = len(decoded.frames)
            out.frame_times = [round(float(t), 4) for t in decoded.times]
            # Frames per second of clip time the sample stands for (for the backbone's time positions).
            sampled_fps = len(decoded.frames) / decoded.duration if decoded.duration > 0 else decoded.source_fps
            return self.processor.video_inputs(decoded.frames, sampled_fps)
        if modality == "image":
            from emoreason.media.image import decode_image

            return self.processor.image_inputs(decode_image(path))
        from emoreason.media.audio import decode_audio

        wave = decode_audio(path, AUDIO_SAMPLE_RATE, self.audio.max_seconds)
        if len(wave) == 0:
            raise MediaError("empty", path, "audio track has no samples")
        return self.processor.audio_inputs(wave)
