"""A sample's media -> a native backbone's processed inputs, with the projector Featurizer's shape.

`NativeFeaturizer.featurize(files)` is the native counterpart of
emoreason.features.featurizer.Featurizer.featurize: the same `MediaFiles` in, a result with `.absent`
(the same `Absence` records, faults and plain absences) out, so prep, training and serving hand a
sample to either model kind the same way. Frames are sampled by emoreason's FrameSampling (decord),
audio decoded by emoreason.media.audio (PyAV, 16 kHz mono); the backbone's processor parts then make
its tensors (emoreason.native.processor).

Which file feeds which modality: `video` from a video file, `image` from a still image, `audio` from
a separate audio file or else the video's track (as for the projector model), `face` (only with a
FaceCropConfig) the main face of each sampled frame of the video, or of the still image, found as the
projector Featurizer finds it (emoreason.features.face_inputs.face_boxes: `detect_every`, `detect_short_side`),
cropped by emoreason.media.faces and given to the backbone as extra images. Video and faces share one decode.
A modality the backbone has no tower for is not requested.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.features.featurizer import Absence, MediaFiles
from emoreason.features.media_config import AudioDecodeConfig, FaceCropConfig
from emoreason.media.errors import MediaError, check_file
from emoreason.media.video import FrameSampling
from emoreason.native.processor import ModalityInputs, NativeProcessor

SOURCES: dict[str, tuple[str, ...]] = {"video": ("video",), "image": ("image",), "audio": ("audio", "video"),
                                       "face": ("video", "image")}
_ABSENT_WHEN_NO_SOURCE = {"video": "no_video", "image": "no_video", "audio": "no_audio", "face": "no_video"}


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
            raise getattr(absence, "error", None) or MediaError(absence.reason, None, absence.message)


class NativeFeaturizer:
    def __init__(self, processor: NativeProcessor, frames: FrameSampling | None = None, audio: AudioDecodeConfig | None = None,
                 cache=None, faces: FaceCropConfig | None = None, face_detector=None):
        """cache: a NativeInputCache to read and fill (prep fills it; training reads it); faces: crop the main
        face of each sampled frame as extra images (None: no face modality); face_detector: an already built one."""
        self.processor = processor
        self.frames = frames or FrameSampling()
        self.audio = audio or AudioDecodeConfig()
        self.cache = cache
        self.faces = faces
        self._detector = face_detector
        self._settings: dict | None = None

    @property
    def detector(self):
        if self._detector is None:
            from emoreason.media.faces import build_face_detector

            self._detector = build_face_detector(self.faces.detector, **self.faces.detector_args)
        return self._detector

    def settings(self, modality: str) -> dict:
        """Every setting that shapes this modality's processed inputs (the cache key)."""
        from emoreason.native.cache import processor_settings

        if self._settings is None:
            self._settings = processor_settings(self.processor)
        if modality == "video":
            return self._settings | {"frames": dataclasses.asdict(self.frames)}
        if modality == "face":
            return self._settings | {"frames": dataclasses.asdict(self.frames), "faces": dataclasses.asdict(self.faces)}
        if modality == "audio":
            return self._settings | {"audio_max_seconds": self.audio.max_seconds}
        return self._settings

    @property
    def modalities(self) -> list[str]:
        return list(self.processor.arch.modalities) + (["face"] if self.faces is not None else [])

    def featurize(self, files: MediaFiles, modalities: Sequence[str] | None = None) -> NativeFeaturized:
        """Processed inputs of every requested modality the backbone takes; each succeeds or fails alone."""
        wanted = [m for m in (modalities or self.modalities) if m in self.modalities]
        out = NativeFeaturized({}, {})
        decoded: dict[Path, object] = {}  # path -> decoded frames, so video and faces share one decode
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
                if isinstance(files[kind], MediaError):  # refused already (e.g. a path outside the data root)
                    raise files[kind]
                check_file(files[kind])
            except MediaError as exc:
                out.absent[modality] = Absence.from_error(modality, exc, file_checked=False)
                continue
            try:
                out.inputs[modality] = self._cached_or_processed(modality, kind, Path(files[kind]), out, decoded)
            except MediaError as exc:
                out.absent[modality] = Absence.from_error(modality, exc)
        return out

    def _cached_or_processed(self, modality: str, kind: str, path: Path, out: NativeFeaturized, decoded: dict) -> ModalityInputs:
        if self.cache is None:
            return self._process(modality, kind, path, out, decoded)
        key = self.cache.key(modality, path, self.settings(modality))
        hit = self.cache.get(modality, key)
        if hit is not None:
            item, extra = hit
            if "frame_times" in extra:
                out.frame_times = json.loads(extra["frame_times"])
            return item
        item = self._process(modality, kind, path, out, decoded)
        self.cache.put(key, item, {"frame_times": out.frame_times} if modality == "video" and out.frame_times else None)
        return item

    def _frames(self, path: Path, out: NativeFeaturized, decoded: dict):
        if path not in decoded:
            from emoreason.media.video import decode_frames

            frames = decode_frames(path, self.frames)
            out.frames_decoded = len(frames.frames)
            out.frame_times = [round(float(t), 4) for t in frames.times]
            decoded[path] = frames
        return decoded[path]

    def _process(self, modality: str, kind: str, path: Path, out: NativeFeaturized, decoded: dict) -> ModalityInputs:
        if modality == "video":
            clip = self._frames(path, out, decoded)
            # Frames per second of clip time the sample stands for (for the backbone's time positions).
            sampled_fps = len(clip.frames) / clip.duration if clip.duration > 0 else clip.source_fps
            return self.processor.video_inputs(clip.frames, sampled_fps)
        if modality == "face":
            from emoreason.features.face_inputs import face_boxes
            from emoreason.media.faces import crop_boxes

            if kind == "image":
                from emoreason.media.image import decode_image

                frames = decode_image(path)[None]
            else:
                frames = self._frames(path, out, decoded).frames
            # The projector Featurizer's boxes (detect_every, detect_short_side), so both kinds crop alike.
            crops, _ = crop_boxes(frames, face_boxes(frames, self.detector, self.faces), self.faces.margin, self.faces.size)
            if len(crops) == 0:
                raise MediaError("no_face", path, f"no face found in any of {len(frames)} sampled frames")
            return self.processor.face_inputs(crops)
        if modality == "image":
            from emoreason.media.image import decode_image

            return self.processor.image_inputs(decode_image(path))
        from emoreason.media.audio import decode_audio

        wave = decode_audio(path, AUDIO_SAMPLE_RATE, self.audio.max_seconds)
        if len(wave) == 0:
            raise MediaError("empty", path, "audio track has no samples")
        return self.processor.audio_inputs(wave)
