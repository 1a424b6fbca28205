"""What the model saw of a request's media, computed with the model's own media settings and functions.

Everything here calls what the engine calls: `decode_frames`/`decode_image` with the model's frame
sampling, its face detector through `face_inputs.face_boxes` (media.faces' `detect_every` and
`detect_short_side`, as both featurizers find the main face) and `crop_boxes`, so the crops shown are the
crops encoded and the boxes drawn are the ones they were cut from,
`decode_audio` at the encoders' sample rate, and the model's featurizer once per modality for
presence, the reason of an absence, the input shape and the time that modality takes on its own.

Both model kinds: a projector model (`ModelMedia`: its encoders' `Featurizer`, features [t, d]) and a
native backbone (`NativeModelMedia`: its `NativeFeaturizer`, the backbone processor's tensors and the
LLM positions they fill; face crops only where the model's config sets `faces:`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.encoders.config import EncoderConfig
from emoreason.features.media_config import MediaConfig
from emoreason.media.errors import REASONS, MediaError
from emoreason.web.drawing import draw_boxes, waveform_image


ANNOTATED_LANDMARKS_NOTE = (
    "landmarks: this model reads annotated landmarks (encoder landmarks:annotation), which media alone does not carry, "
    "so the modality is absent here; `emoreason infer` passes each sample's `landmarks`, and `emoreason serve` takes "
    "them in a request's `landmarks` field")


def reads_annotated_landmarks(model) -> bool:
    """Whether the model's landmark encoder reads a sample's annotation rather than the media."""
    from emoreason.encoders.landmarks import ANNOTATION

    encoders = getattr(model, "encoders", {})
    return "landmarks" in model.modalities and "landmarks" in encoders and encoders["landmarks"].model == ANNOTATION


@dataclasses.dataclass
class ModalityRow:
    modality: str
    status: str  # "present" | "absent"
    reason: str  # an emoreason.media.errors.REASONS key, "" when present
    detail: str
    shape: str  # "[t, d]" of the features (a native model: its processor tensors and LLM positions), "" when absent
    seconds: float


@dataclasses.dataclass
class SeenReport:
    frames: list[tuple[np.ndarray, str]] = dataclasses.field(default_factory=list)
    """Sampled frames with the main face's box drawn, and a caption (time, face or not)."""
    boxes: list = dataclasses.field(default_factory=list)
    """The main face's box (a media.faces Box, None: no face) in each sampled frame: the boxes drawn and cropped."""
    crops: list[tuple[np.ndarray, str]] = dataclasses.field(default_factory=list)
    """The face crops the face encoder gets, one per frame with a face."""
    waveform: np.ndarray | None = None
    modalities: list[ModalityRow] = dataclasses.field(default_factory=list)
    steps: dict[str, float] = dataclasses.field(default_factory=dict)
    """Seconds of the shared steps: decoding the frames, detecting faces, decoding the audio."""
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ModelMedia:
    """The parts of a model that turn media into features."""

    encoders: Mapping[str, EncoderConfig]
    media: MediaConfig
    modalities: Sequence[str]
    tuned: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The model's LoRA-tuned encoders (EmotionLM.tuned_encoders), which the Featurizer must run."""

    @classmethod
    def of_engine(cls, engine) -> ModelMedia | NativeModelMedia | None:
        """From a live-media engine (hf or vllm backend, either kind); None for an engine that does not say."""
        # Both media paths an engine may hold (Featurizer, or the MediaFeatureExtractor it replaces) carry these two.
        source = getattr(engine, "featurizer", None) or getattr(engine, "extractor", None)
        if source is None or not hasattr(engine, "modalities"):
            return None
        from emoreason.native.featurizer import NativeFeaturizer

        if isinstance(source, NativeFeaturizer):
            return NativeModelMedia(source, list(engine.modalities))
        return cls(source.encoders, source.media, list(engine.modalities), dict(getattr(source, "tuned", {})))

    @classmethod
    def of_model_dir(cls, model_dir: str | Path, trust=None) -> ModelMedia | NativeModelMedia:
        """From a model directory's config alone (no LLM loaded), under the user's trust choices."""
        from emoreason.model_kinds import kind_of_dir

        if kind_of_dir(model_dir, missing_ok=True).name == "native":
            return NativeModelMedia.of_model_dir(model_dir)
        from emoreason.model.loading import read_model_config

        config, _ = read_model_config(model_dir, trust)
        return cls(config.encoders, config.media, list(config.modalities))

    # What the Inspector reads; NativeModelMedia answers the same.
    @property
    def frames(self):
        return self.media.video

    @property
    def faces(self):
        return self.media.faces

    @property
    def audio_max_seconds(self) -> float | None:
        return self.media.audio.max_seconds

    def featurize_one(self, files: Mapping[str, Path], modality: str, detector, landmarks=None) -> tuple[str, Any]:
        """(the input shape, "" when absent; the Absence or None) of one modality computed alone.

        landmarks: the clip's annotated landmarks (a schema Landmarks), for a `landmarks:annotation` encoder."""
        from emoreason.features.featurizer import Featurizer

        featurizer = Featurizer(self.encoders, self.media, face_detector=detector, tuned=self.tuned)
        result = featurizer.featurize(dict(files), [modality], landmarks=landmarks)
        if modality in result.features:
            return "[" + ", ".join(str(n) for n in result.features[modality].shape) + "]", None
        return "", result.absent.get(modality)


@dataclasses.dataclass
class NativeModelMedia:
    """A native backbone's media path: its NativeFeaturizer (the backbone's processor, frame sampling, faces, audio)."""

    featurizer: Any  # emoreason.native.featurizer.NativeFeaturizer
    modalities: Sequence[str]

    @classmethod
    def of_model_dir(cls, model_dir: str | Path) -> NativeModelMedia:
        """From a native model directory's config and processor files (no backbone weights loaded)."""
        import transformers as tf

        from emoreason.native.arch import arch_for
        from emoreason.native.featurizer import NativeFeaturizer
        from emoreason.native.model import media_settings, read_native_config, resolve_base
        from emoreason.native.processor import NativeProcessor

        cfg = read_native_config(model_dir)
        # A trained directory holds the processor files but no config.json: the backbone's model_type is the base's.
        model_type = arch_for(tf.AutoConfig.from_pretrained(resolve_base(cfg, model_dir)).model_type).model_type
        processor = NativeProcessor.from_pretrained(model_dir, media_settings(cfg), model_type=model_type)
        return cls(NativeFeaturizer(processor, cfg.frames, cfg.audio, faces=cfg.faces),
                   list(cfg.modalities or processor.arch.modalities))

    @property
    def frames(self):
        return self.featurizer.frames

    @property
    def faces(self):
        return self.featurizer.faces  # None: this model gets no face crops

    @property
    def audio_max_seconds(self) -> float | None:
        return self.featurizer.audio.max_seconds

    def featurize_one(self, files: Mapping[str, Path], modality: str, detector, landmarks=None) -> tuple[str, Any]:
        from emoreason.native.featurizer import NativeFeaturizer

        featurizer = NativeFeaturizer(self.featurizer.processor, self.featurizer.frames, self.featurizer.audio,
                                      faces=self.featurizer.faces, face_detector=detector)
        result = featurizer.featurize(dict(files), [modality])
        item = result.inputs.get(modality)
        if item is None:
            return "", result.absent.get(modality)
        tensors = ", ".join(f"{name} [" + ", ".join(str(n) for n in t.shape) + "]" for name, t in item.tensors.items()
                            if t.ndim >= 2 and t.is_floating_point())  # pixels or audio features, not grids or times
        return f"{tensors}; {item.num_tokens} LLM positions", None


class Inspector:
    """Builds SeenReports for one model; one report at a time (the face detector is not shared across threads)."""

    def __init__(self, model: ModelMedia | NativeModelMedia):
        import threading

        self.model = model
        self._detector = None
        self._lock = threading.Lock()

    @property
    def detector(self):
        if self._detector is None:
            from emoreason.media.faces import build_face_detector

            faces = self.model.faces
            self._detector = build_face_detector(faces.detector, **faces.detector_args)
        return self._detector

    def inspect(self, files: Mapping[str, Path], landmarks=None) -> SeenReport:
        """landmarks: the clip's annotated landmarks (a schema Landmarks) when it has them; an upload has none."""
        with self._lock:
            report = SeenReport()
            visual = files.get("video") or files.get("image")
            if visual is not None:
                self._frames(Path(visual), "video" if "video" in files else "image", report)
            sound = files.get("audio") or files.get("video")
            if sound is not None:
                self._waveform(Path(sound), report)
            self._modalities(files, report, landmarks)
            return report

    def _frames(self, path: Path, kind: str, report: SeenReport) -> None:
        from emoreason.features.face_inputs import face_boxes
        from emoreason.media.faces import crop_boxes
        from emoreason.media.image import decode_image
        from emoreason.media.video import decode_frames

        start = time.perf_counter()
        try:
            if kind == "video":
                decoded = decode_frames(path, self.model.frames)
                frames, times = decoded.frames, [float(t) for t in decoded.times]
            else:
                frames, times = decode_image(path)[None], [0.0]
        except MediaError as exc:
            report.notes.append(f"frames: {REASONS[exc.reason]}" + (f" ({exc.detail})" if exc.detail else ""))
            return
        report.steps["decode frames"] = time.perf_counter() - start
        faces = self.model.faces
        if faces is None:  # a native model without `faces:`: the frames are all it sees
            report.frames = [(frame, f"t={t:.2f}s") for frame, t in zip(frames, times)]
            report.notes.append("faces: this model takes no face crops (no `faces:` in its config)")
            return
        start = time.perf_counter()
        report.boxes = face_boxes(frames, self.detector, faces)  # detected only on the frames the settings say
        crops, _ = crop_boxes(frames, report.boxes, faces.margin, faces.size)  # what the face encoder gets
        report.steps["detect faces"] = time.perf_counter() - start
        with_face = [i for i, box in enumerate(report.boxes) if box is not None]
        for i, (frame, box) in enumerate(zip(frames, report.boxes)):
            caption = f"t={times[i]:.2f}s " + ("face" if box is not None else "no face")
            report.frames.append((draw_boxes(frame, [box] if box is not None else [], box), caption))
        report.crops = [(crop, f"t={times[i]:.2f}s") for crop, i in zip(crops, with_face)]
        if faces.detect_every > 1 or faces.detect_short_side is not None:
            every = "every frame" if faces.detect_every == 1 else f"every {faces.detect_every} frames (the frames between keep the last box)"
            size = "at full size" if faces.detect_short_side is None else f"on a copy {faces.detect_short_side} px on its short side"
            report.notes.append(f"faces: detected on {every}, {size}, as this model's media.faces says")

    def _waveform(self, path: Path, report: SeenReport) -> None:
        from emoreason.media.audio import decode_audio

        start = time.perf_counter()
        try:
            wave = decode_audio(path, AUDIO_SAMPLE_RATE, self.model.audio_max_seconds)  # [n]
        except MediaError as exc:
            report.notes.append(f"audio: {REASONS[exc.reason]}" + (f" ({exc.detail})" if exc.detail else ""))
            return
        report.steps["decode audio"] = time.perf_counter() - start
        report.waveform = waveform_image(wave)
        report.notes.append(f"audio: {len(wave) / AUDIO_SAMPLE_RATE:.2f} s at {AUDIO_SAMPLE_RATE} Hz mono")

    def _modalities(self, files: Mapping[str, Path], report: SeenReport, landmarks=None) -> None:
        detector = self.detector if self.model.faces is not None else None
        if landmarks is None and reads_annotated_landmarks(self.model):
            report.notes.append(ANNOTATED_LANDMARKS_NOTE)
        for modality in self.model.modalities:
            start = time.perf_counter()
            shape, absence = self.model.featurize_one(files, modality, detector, landmarks)  # alone: its time is its own
            seconds = time.perf_counter() - start
            if shape:
                report.modalities.append(ModalityRow(modality, "present", "", "", shape, seconds))
            else:
                reason = absence.reason if absence else ""
                report.modalities.append(ModalityRow(modality, "absent", reason, absence.message if absence else "", "", seconds))
