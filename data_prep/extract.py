"""One sample through the live feature path, with every result kept in the feature cache.

A cached entry is reused only when its key matches: the media bytes, the encoder and its weights,
and every setting. Each modality succeeds or fails on its own and fails with a reason code.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

from emoreason.data_prep.prep_config import PrepConfig
from emoreason.encoders.frozen import model_fingerprint
from emoreason.features.cache import FeatureCache, FeatureFileError, read_feature_file
from emoreason.features.hashing import file_content_hash
from emoreason.features.live import Issue, MediaFeatureExtractor, audio_source, no_face_issue
from emoreason.media.errors import MediaError, check_file
from emoreason.media.paths import confined_path
from emoreason.schema import FaceRecord, FeatureRef, Sample


@dataclasses.dataclass
class SampleResult:
    sample_id: str
    status: str  # "ok" | "partial" | "failed"
    issues: list[Issue]
    sample: Sample | None = None  # the sample with feature references, unless failed
    frames_decoded: int = 0

    def to_status_json(self) -> dict[str, Any]:
        return {"id": self.sample_id, "status": self.status, "issues": [i.to_json() for i in self.issues]}


class SampleExtractor:
    """Computes (or finds cached) features for every configured modality of a sample."""

    def __init__(self, cfg: PrepConfig, samples_dir: str | Path, data_root: str | Path):
        self.cfg = cfg
        self.samples_dir = Path(samples_dir)
        self.data_root = Path(data_root)
        self.cache = FeatureCache(cfg.feature_cache or self.samples_dir / "features")
        self.live = MediaFeatureExtractor(cfg.encoders, cfg.media())

    def _key(self, modality: str, media_hash: str) -> str:
        enc = self.cfg.encoders[modality]
        return self.cache.make_key(modality, media_hash, enc.model, model_fingerprint(enc.model), self.live.settings(modality))

    def _store(self, modality: str, key: str, features: torch.Tensor, metadata: dict[str, str]) -> FeatureRef:
        self.cache.put(modality, key, features, metadata)
        return self.cache.ref(modality, key, self.cfg.encoders[modality].model, list(features.shape), self.samples_dir)

    def _cached(self, modality: str, key: str, sample_id: str) -> tuple[FeatureRef, dict[str, str]] | None:
        """The entry's reference and metadata, or None when absent or damaged (then it is recomputed).

        The whole entry is read and verified (hash, finite values), not just its header: a damaged entry
        would otherwise be referenced again and reach training.
        """
        path = self.cache.path_for(modality, key)
        if not path.exists():
            return None
        try:
            features, metadata = read_feature_file(path)
        except FeatureFileError as exc:
            print(f"prep: {path} (sample {sample_id}, {modality}): {exc.reason}; recomputing", file=sys.stderr)
            return None
        return self.cache.ref(modality, key, self.cfg.encoders[modality].model, list(features.shape), self.samples_dir), metadata

    def _media_file(self, sample: Sample, kind: str) -> Path:
        """The sample's `kind` file, confined to data_root as the server confines requests to its media root.

        MediaError when it resolves outside the root (a symlink leaving it), is missing, or is a
        folder, fifo or device (never opened: a fifo would block).
        """
        path = confined_path(getattr(sample.media, kind), self.data_root)
        check_file(path)
        return path

    def process(self, sample: Sample) -> SampleResult:
        issues: list[Issue] = []
        features: dict[str, FeatureRef] = {}
        faces: FaceRecord | None = None
        frames_decoded = 0

        if "audio" in self.cfg.encoders:
            ref, issue = self._audio(sample)
            if ref is not None:
                features["audio"] = ref
            if issue is not None:
                issues.append(issue)

        visual = [m for m in ("face", "frame", "video") if m in self.cfg.encoders]
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
        kind = audio_source(sample)
        if kind is None:
            return None, Issue("audio", "no_audio", "sample has neither media.audio nor media.video")
        try:
            path = self._media_file(sample, kind)
            key = self._key("audio", file_content_hash(path))
            cached = self._cached("audio", key, sample.id)
            if cached is not None:
                return cached[0], None
            encoded = self.live.audio_features(path)  # [t, d]
        except MediaError as exc:
            return None, Issue("audio", exc.reason, str(exc))
        return self._store("audio", key, encoded, {"id": sample.id}), None

    def _visual(self, sample: Sample, modalities: list[str]):
        refs: dict[str, FeatureRef] = {}
        faces: FaceRecord | None = None
        kind, modalities, issues = self.live.visual_plan(sample, modalities)
        if not modalities:
            return refs, None, issues, 0
        try:
            path = self._media_file(sample, kind)
        except MediaError as err:
            return refs, None, issues + [Issue(m, err.reason, str(err)) for m in modalities], 0

        media_hash = file_content_hash(path)
        keys = {m: self._key(m, media_hash) for m in modalities}
        todo = []
        for m in modalities:
            cached = self._cached(m, keys[m], sample.id)
            if cached is not None and m == "face":
                # The face record travels in the entry's metadata, so a cache hit still knows which frames had faces.
                faces = FaceRecord.model_validate(json.loads(cached[1]["face_record"])) if "face_record" in cached[1] else None
                cached = cached if faces is not None else None
            if cached is None:
                todo.append(m)
            else:
                refs[m] = cached[0]
        if not todo:
            return refs, faces, issues, 0

        try:
            decoded = self.live.decode_visual(path, kind)
        except MediaError as exc:
            return refs, faces, issues + [Issue(m, exc.reason, str(exc)) for m in todo], 0
        for m in todo:
            if m == "face":
                encoded, faces = self.live.face_features(decoded)
                if encoded is None:
                    issues.append(no_face_issue(faces))
                    continue
                refs["face"] = self._store("face", keys["face"], encoded, {"id": sample.id, "face_record": faces.model_dump_json()})
            else:
                refs[m] = self._store(m, keys[m], self.live.frame_or_video_features(decoded, m), {"id": sample.id})
        return refs, faces, issues, len(decoded.frames)
