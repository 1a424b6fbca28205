"""One sample through decode -> faces -> frozen encoders -> feature cache.

Each modality succeeds or fails on its own: a clip without an audio track still gets its face,
frame and video features, and the failure is returned as an issue with a reason code.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emoreason.data_prep.prep_config import PrepConfig
from emoreason.constants import AUDIO_SAMPLE_RATE
from emoreason.encoders.frozen import load_encoder, model_fingerprint
from emoreason.features.cache import FeatureCache
from emoreason.features.hashing import file_content_hash
from emoreason.media.audio import decode_audio
from emoreason.media.errors import MediaError
from emoreason.media.faces import build_face_detector, crop_main_faces
from emoreason.media.image import decode_image
from emoreason.media.video import decode_frames
from emoreason.schema import FaceRecord, FeatureRef, Sample

VISUAL_MODALITIES = ("face", "frame", "video")
# 25 ms at 16 kHz: the HuBERT/wav2vec2 conv stack needs at least one 20 ms frame (400 samples).
MIN_AUDIO_SAMPLES = 400


@dataclasses.dataclass
class Issue:
    modality: str
    reason: str
    message: str

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class SampleResult:
    sample_id: str
    status: str  # "ok" | "partial" | "failed"
    issues: list[Issue]
    sample: Sample | None = None  # the sample with feature references, unless failed
    frames_decoded: int = 0

    def to_status_json(self) -> dict[str, Any]:
        return {"id": self.sample_id, "status": self.status, "issues": [i.to_json() for i in self.issues]}


@dataclasses.dataclass
class _Frames:
    frames: np.ndarray  # [n, h, w, 3] uint8
    times: list[float]


class SampleExtractor:
    """Computes (or finds cached) features for every configured modality of a sample."""

    def __init__(self, cfg: PrepConfig, samples_dir: str | Path, data_root: str | Path):
        self.cfg = cfg
        self.samples_dir = Path(samples_dir)
        self.data_root = Path(data_root)
        self.cache = FeatureCache(cfg.feature_cache or self.samples_dir / "features")
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            self._detector = build_face_detector(self.cfg.faces.detector, **self.cfg.faces.detector_args)
        return self._detector

    def _settings(self, modality: str) -> dict[str, Any]:
        enc = self.cfg.encoders[modality]
        settings: dict[str, Any] = {"encoder": enc.settings_fingerprint()}
        if modality == "audio":
            settings["sample_rate"] = AUDIO_SAMPLE_RATE
        else:
            settings["frames"] = dataclasses.asdict(self.cfg.video)
        if modality == "face":
            settings["faces"] = dataclasses.asdict(self.cfg.faces)
        return settings

    def _key(self, modality: str, media_hash: str) -> str:
        enc = self.cfg.encoders[modality]
        return self.cache.make_key(modality, media_hash, enc.model, model_fingerprint(enc.model), self._settings(modality))

    def _store(self, modality: str, key: str, features: torch.Tensor, metadata: dict[str, str]) -> FeatureRef:
        self.cache.put(modality, key, features, metadata)
        return self.cache.ref(modality, key, self.cfg.encoders[modality].model, list(features.shape), self.samples_dir)

    def _cached(self, modality: str, key: str) -> FeatureRef | None:
        path = self.cache.path_for(modality, key)
        if not path.exists():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt") as f:
                shape = list(f.get_slice("features").get_shape())
        except Exception:
            return None  # unreadable entry: recompute
        return self.cache.ref(modality, key, self.cfg.encoders[modality].model, shape, self.samples_dir)

    def _cached_face_record(self, key: str) -> FaceRecord | None:
        from safetensors import safe_open

        with safe_open(str(self.cache.path_for("face", key)), "pt") as f:
            meta = f.metadata() or {}
        if "face_record" not in meta:
            return None
        return FaceRecord.model_validate(json.loads(meta["face_record"]))

    def process(self, sample: Sample) -> SampleResult:
        issues: list[Issue] = []
        features: dict[str, FeatureRef] = {}
        faces: FaceRecord | None = None
        frames_decoded = 0
        wanted = list(self.cfg.encoders)

        if "audio" in wanted:
            ref, issue = self._audio(sample)
            if ref is not None:
                features["audio"] = ref
            if issue is not None:
                issues.append(issue)

        visual = [m for m in VISUAL_MODALITIES if m in wanted]
        if visual:
            refs, faces, visual_issues, frames_decoded = self._visual(sample, visual)
            features.update(refs)
            issues.extend(visual_issues)

        failed_required = any(i.modality in self.cfg.required_modalities for i in issues)
        if not features or failed_required:
            return SampleResult(sample.id, "failed", issues, frames_decoded=frames_decoded)
        out = sample.model_copy(update={"features": features, "faces": faces if faces is not None else sample.faces})
        return SampleResult(sample.id, "partial" if issues else "ok", issues, out, frames_decoded)

    def _audio(self, sample: Sample) -> tuple[FeatureRef | None, Issue | None]:
        kind = "audio" if sample.media.audio else "video" if sample.media.video else None
        if kind is None:
            return None, Issue("audio", "no_audio", "sample has neither media.audio nor media.video")
        path = sample.media_path(kind, self.data_root)
        try:
            if not path.is_file():
                raise MediaError("missing_file", path)
            key = self._key("audio", file_content_hash(path))
            cached = self._cached("audio", key)
            if cached is not None:
                return cached, None
            wave = decode_audio(path, AUDIO_SAMPLE_RATE, self.cfg.audio.max_seconds)  # [n]
            if len(wave) < MIN_AUDIO_SAMPLES:
                raise MediaError("empty", path, f"audio of {len(wave)} samples is shorter than one encoder frame")
            encoded = load_encoder(self.cfg.encoders["audio"]).encode_audio(wave)  # [t, d]
        except MediaError as exc:
            return None, Issue("audio", exc.reason, str(exc))
        return self._store("audio", key, encoded, {"id": sample.id}), None

    def _decode_visual(self, sample: Sample) -> _Frames:
        if sample.media.video:
            decoded = decode_frames(sample.media_path("video", self.data_root), self.cfg.video)
            return _Frames(decoded.frames, [round(float(t), 4) for t in decoded.times])
        image = decode_image(sample.media_path("image", self.data_root))  # [h, w, 3]
        return _Frames(image[None], [0.0])

    def _visual(self, sample: Sample, modalities: list[str]):
        refs: dict[str, FeatureRef] = {}
        issues: list[Issue] = []
        faces: FaceRecord | None = None
        kind = "video" if sample.media.video else "image" if sample.media.image else None
        if kind is None:
            return refs, None, [Issue(m, "no_video", "sample has neither media.video nor media.image") for m in modalities], 0
        if kind == "image" and "video" in modalities:
            issues.append(Issue("video", "no_video", "a still image has no motion for the video encoder"))
            modalities = [m for m in modalities if m != "video"]
        path = sample.media_path(kind, self.data_root)
        if not path.is_file():
            err = MediaError("missing_file", path)
            return refs, None, issues + [Issue(m, err.reason, str(err)) for m in modalities], 0

        media_hash = file_content_hash(path)
        keys = {m: self._key(m, media_hash) for m in modalities}
        todo = []
        for m in modalities:
            cached = self._cached(m, keys[m])
            if cached is not None and m == "face":
                faces = self._cached_face_record(keys[m])
                cached = cached if faces is not None else None
            if cached is None:
                todo.append(m)
            else:
                refs[m] = cached
        if not todo:
            return refs, faces, issues, 0

        try:
            decoded = self._decode_visual(sample)
        except MediaError as exc:
            return refs, faces, issues + [Issue(m, exc.reason, str(exc)) for m in todo], 0
        for m in todo:
            if m == "face":
                faces, issue = self._faces(sample, decoded, keys["face"], refs)
                if issue is not None:
                    issues.append(issue)
                continue
            encoder = load_encoder(self.cfg.encoders[m])
            if m == "video":
                encoded = encoder.encode_video(decoded.frames)  # [t, d]
            else:
                encoded = encoder.encode_images(decoded.frames).flatten(0, 1)  # [n * tokens, d]
            refs[m] = self._store(m, keys[m], encoded, {"id": sample.id})
        return refs, faces, issues, len(decoded.frames)

    def _faces(self, sample: Sample, decoded: _Frames, key: str, refs: dict[str, FeatureRef]):
        crops, missing = crop_main_faces(decoded.frames, self.detector, self.cfg.faces.margin, self.cfg.faces.size)
        record = FaceRecord(frame_times=decoded.times, missing=missing)
        if len(crops) == 0:
            return record, Issue("face", "no_face", f"no face found in any of {len(decoded.times)} sampled frames")
        encoded = load_encoder(self.cfg.encoders["face"]).encode_images(crops).flatten(0, 1)  # [k * tokens, d]
        refs["face"] = self._store("face", key, encoded, {"id": sample.id, "face_record": record.model_dump_json()})
        return record, None
