"""Features straight from media: decode -> faces -> frozen encoders, with no cache.

`emoreason prep` wraps this with the feature cache; serving calls it per request. Each modality
succeeds or fails on its own and reports why, so a clip without audio still yields its visual
features and nothing is ever filled in with zeros.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.encoders.config import EncoderConfig
from emoreason.encoders.frozen import load_encoder
from emoreason.features.media_config import MediaConfig
from emoreason.media.audio import decode_audio
from emoreason.media.errors import MediaError
from emoreason.media.faces import build_face_detector, crop_main_faces
from emoreason.media.image import decode_image
from emoreason.media.video import decode_frames
from emoreason.schema import FaceRecord, Sample

VISUAL_MODALITIES = ("face", "frame", "video")
# 25 ms at 16 kHz: the HuBERT/wav2vec2 conv stack needs at least one 20 ms frame (400 samples).
MIN_AUDIO_SAMPLES = 400


@dataclasses.dataclass
class Issue:
    """Why one modality of a sample has no features."""

    modality: str
    reason: str  # a key of emoreason.media.errors.REASONS
    message: str

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DecodedVisual:
    frames: np.ndarray  # [n, h, w, 3] uint8 RGB
    times: list[float]  # [n] seconds


@dataclasses.dataclass
class ExtractedFeatures:
    features: dict[str, torch.Tensor]  # modality -> [t, d] float32
    faces: FaceRecord | None
    issues: list[Issue]
    frames_decoded: int = 0


def audio_source(sample: Sample) -> str | None:
    """Media kind that carries the sample's audio: a separate audio file wins over the video's track."""
    return "audio" if sample.media.audio else "video" if sample.media.video else None


def visual_source(sample: Sample) -> str | None:
    return "video" if sample.media.video else "image" if sample.media.image else None


class MediaFeatureExtractor:
    """Runs the configured encoder of each modality on a sample's media."""

    def __init__(self, encoders: dict[str, EncoderConfig], media: MediaConfig):
        self.encoders = encoders
        self.media = media
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            self._detector = build_face_detector(self.media.faces.detector, **self.media.faces.detector_args)
        return self._detector

    def settings(self, modality: str) -> dict[str, Any]:
        """Every setting that shapes this modality's features (for cache keys)."""
        settings: dict[str, Any] = {"encoder": self.encoders[modality].settings_fingerprint()}
        if modality == "audio":
            settings["sample_rate"] = AUDIO_SAMPLE_RATE
        else:
            settings["frames"] = dataclasses.asdict(self.media.video)
        if modality == "face":
            settings["faces"] = dataclasses.asdict(self.media.faces)
        return settings

    def audio_features(self, path: str | Path) -> torch.Tensor:
        """[t, d] features of the audio in `path`, or MediaError."""
        wave = decode_audio(path, AUDIO_SAMPLE_RATE, self.media.audio.max_seconds)  # [n]
        if len(wave) < MIN_AUDIO_SAMPLES:
            raise MediaError("empty", path, f"audio of {len(wave)} samples is shorter than one encoder frame")
        return load_encoder(self.encoders["audio"]).encode_audio(wave)

    def decode_visual(self, path: str | Path, kind: str) -> DecodedVisual:
        if kind == "video":
            decoded = decode_frames(path, self.media.video)
            return DecodedVisual(decoded.frames, [round(float(t), 4) for t in decoded.times])
        return DecodedVisual(decode_image(path)[None], [0.0])

    def frame_or_video_features(self, decoded: DecodedVisual, modality: str) -> torch.Tensor:
        encoder = load_encoder(self.encoders[modality])
        if modality == "video":
            return encoder.encode_video(decoded.frames)  # [t, d]
        return encoder.encode_images(decoded.frames).flatten(0, 1)  # [n * tokens, d]

    def face_features(self, decoded: DecodedVisual) -> tuple[torch.Tensor | None, FaceRecord]:
        """Features of the main face per frame ([k * tokens, d]), None when no frame has a face."""
        faces = self.media.faces
        crops, missing = crop_main_faces(decoded.frames, self.detector, faces.margin, faces.size)
        record = FaceRecord(frame_times=decoded.times, missing=missing)
        if len(crops) == 0:
            return None, record
        return load_encoder(self.encoders["face"]).encode_images(crops).flatten(0, 1), record

    def extract(self, sample: Sample, data_root: str | Path, modalities: list[str] | None = None) -> ExtractedFeatures:
        """Uncached features of every requested modality that has an encoder."""
        wanted = [m for m in (modalities or list(self.encoders)) if m in self.encoders]
        out = ExtractedFeatures({}, None, [])
        if "audio" in wanted:
            kind = audio_source(sample)
            if kind is None:
                out.issues.append(Issue("audio", "no_audio", "sample has neither media.audio nor media.video"))
            else:
                try:
                    out.features["audio"] = self.audio_features(sample.media_path(kind, data_root))
                except MediaError as exc:
                    out.issues.append(Issue("audio", exc.reason, str(exc)))
        visual = [m for m in VISUAL_MODALITIES if m in wanted]
        if not visual:
            return out
        kind, visual, plan_issues = self.visual_plan(sample, visual)
        out.issues.extend(plan_issues)
        if not visual:
            return out
        try:
            decoded = self.decode_visual(sample.media_path(kind, data_root), kind)
        except MediaError as exc:
            out.issues.extend(Issue(m, exc.reason, str(exc)) for m in visual)
            return out
        out.frames_decoded = len(decoded.frames)
        for m in visual:
            if m == "face":
                features, out.faces = self.face_features(decoded)
                if features is None:
                    out.issues.append(no_face_issue(out.faces))
                    continue
                out.features["face"] = features
            else:
                out.features[m] = self.frame_or_video_features(decoded, m)
        return out

    @staticmethod
    def visual_plan(sample: Sample, modalities: list[str]) -> tuple[str | None, list[str], list[Issue]]:
        """Which media kind feeds the visual modalities, which of them can run, and why others cannot."""
        kind = visual_source(sample)
        if kind is None:
            return None, [], [Issue(m, "no_video", "sample has neither media.video nor media.image") for m in modalities]
        if kind == "image" and "video" in modalities:
            return kind, [m for m in modalities if m != "video"], [
                Issue("video", "no_video", "a still image has no motion for the video encoder")
            ]
        return kind, modalities, []


def no_face_issue(record: FaceRecord) -> Issue:
    return Issue("face", "no_face", f"no face found in any of {len(record.frame_times)} sampled frames")
