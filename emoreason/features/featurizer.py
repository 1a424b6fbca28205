"""The one path from a sample's media to the projector model's inputs: decode -> faces -> encoders [-> cache].

`emoreason prep` (with the feature cache), training with `feature_source=live` and every serving
backend call `Featurizer.featurize`; nothing else decodes media for the projector model. So a served
model sees exactly the fp16 features it was trained on, and each rule below lives here once:

- which media file feeds which modality (the `sources` of each row of `emoreason.constants.MODALITY_TABLE`:
  a separate audio file wins over the video's track, a still image cannot feed the video encoder);
- the visual modalities share one decode of the frames; the face modality crops the main face per frame;
- a modality succeeds or fails on its own, with a reason code from `emoreason.media.errors.REASONS`.

Failures come back in one shape, `Absence`, split in two kinds: a *fault* (the file is missing,
corrupt, not media, too long: the input is wrong) and a plain absence (a readable file simply has no
audio track, no face, no motion). Prep reports both per sample; a server answers a fault with a 4xx
and drops an absent modality's placeholder from the prompt. Nothing is ever filled in with zeros.

A native multimodal backbone turns the same `MediaFiles` into its own processor's inputs; it plugs in
beside this class with the same `featurize(files) -> result with .absent` shape (docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emoreason.constants import AUDIO_SAMPLE_RATE, MEDIA_KINDS, MODALITY_SPECS, MODALITY_TABLE, VISUAL_MODALITIES
from emoreason.encoders.config import EncoderConfig
from emoreason.features.cache import FeatureFileError, read_feature_file
from emoreason.features.media_config import MediaConfig
from emoreason.media.errors import MediaError, check_file
from emoreason.schema import FaceRecord, Landmarks, Sample

from emoreason.encoders.landmarks import ANNOTATION as LANDMARK_ANNOTATION
from emoreason.encoders.landmarks import DETECTOR as LANDMARK_DETECTOR

# 25 ms at 16 kHz: the HuBERT/wav2vec2 conv stack needs at least one 20 ms frame (400 samples).
MIN_AUDIO_SAMPLES = 400
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


def sample_files(sample: Sample, data_root: str | os.PathLike) -> dict[str, Path | MediaError]:
    """The sample's media files, each confined to the data root by the rule the server applies to its media root."""
    from emoreason.media.paths import confined_path

    files: dict[str, Path | MediaError] = {}
    for kind in MEDIA_KINDS:
        relative = getattr(sample.media, kind)
        if relative is None:
            continue
        try:
            files[kind] = confined_path(relative, data_root)
        except MediaError as exc:
            files[kind] = exc
    return files


@dataclasses.dataclass
class _Frames:
    frames: np.ndarray  # [n, h, w, 3] uint8 RGB
    times: list[float]  # [n] seconds


@dataclasses.dataclass
class Decoded:
    """A sample between `Featurizer.decode` and `Featurizer.encode`: what is known so far, and the encoder inputs."""

    result: Featurized
    """Cache hits, absences and the face record found while decoding."""
    sample_id: str | None = None
    pending: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    """modality -> its encoder's input, in compute order: a waveform [n], frames or face crops [n, h, w, 3],
    landmarks [k, 68, 2]."""


class Featurizer:
    """Runs the configured frozen encoder of each modality on a sample's media, optionally through a cache."""

    def __init__(self, encoders: Mapping[str, EncoderConfig], media: MediaConfig, cache=None, face_detector=None,
                 tuned: Mapping[str, Any] | None = None):
        """cache: a FeatureCache to read and fill; face_detector: an already built detector (default: built
        from media.faces on first use); tuned: modality -> the TunedEncoder a model owns for each encoder
        with `train.mode: lora` (emoreason.encoders.tuned), whose weights are the model's, not the checkpoint's."""
        self.encoders = dict(encoders)
        self.media = media
        self.cache = cache
        self._detector = face_detector
        self.tuned = dict(tuned or {})

    @property
    def modalities(self) -> list[str]:
        return [spec.name for spec in MODALITY_TABLE if spec.name in self.encoders]

    @property
    def detector(self):
        if self._detector is None:
            from emoreason.media.faces import build_face_detector

            self._detector = build_face_detector(self.media.faces.detector, **self.media.faces.detector_args)
        return self._detector

    def encoder(self, modality: str):
        """The modality's frozen encoder, loaded once; EncoderLoadError (never a media error) when it cannot load."""
        from emoreason.encoders.frozen import load_encoder

        if modality in self.tuned:
            return self.tuned[modality].encoder  # the checkpoint with the model's trained adapters in it
        if self.encoders[modality].train.trainable:
            # The checkpoint alone would give the untuned features, silently: the tuned weights live in a model.
            raise EncoderLoadError(modality, self.encoders[modality].model, ValueError(
                "train.mode is lora: its tuned weights are a model's; give the model's encoder (Featurizer tuned=...)"),
                key=f"encoders.{modality}.train.mode")
        try:
            return load_encoder(self._weights_config(modality))
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for a bad checkpoint
            raise EncoderLoadError(modality, self.encoders[modality].model, exc) from exc

    def load_all(self) -> None:
        """Load every encoder and the face detector now, so a broken one stops a batch or a server before it
        starts, named by its key, instead of failing every sample as if the media were at fault."""
        for modality in self.modalities:
            self.encoder(modality)
        if "face" in self.encoders:
            try:
                self.detector
            except Exception as exc:
                raise EncoderLoadError("face", self.media.faces.detector, exc, key="media.faces.detector") from exc

    def settings(self, modality: str) -> dict[str, Any]:
        """Every setting that shapes this modality's features (the cache key and the prep->train contract)."""
        settings: dict[str, Any] = {"encoder": self.encoders[modality].settings_fingerprint()}
        if modality == "audio":
            settings["sample_rate"] = AUDIO_SAMPLE_RATE
        else:
            settings["frames"] = dataclasses.asdict(self.media.video)
        if modality == "face" or self.encoders[modality].model == LANDMARK_DETECTOR:
            settings["faces"] = self.media.faces.key_settings()
        return settings

    def _weights_config(self, modality: str) -> EncoderConfig:
        """The config whose encoder runs `modality`: modalities that read the frames with one checkpoint, layer
        and output share one loaded encoder (each pools its own way), so its weights are in memory once."""
        return self.encoders[self._forward_group(modality)[0]]

    def forward_groups(self) -> list[list[str]]:
        """The configured modalities partitioned by encoder forward pass: what one encoder process must run together."""
        groups: list[list[str]] = []
        for m in self.modalities:
            if not any(m in g for g in groups):
                groups.append(self._forward_group(m))
        return groups

    def _forward_group(self, modality: str) -> list[str]:
        """The modalities computed in the same encoder forward pass as `modality` (itself first when alone)."""
        enc = self.encoders[modality]
        if MODALITY_SPECS[modality].encoder_input != "frames" or enc.output != "hidden" or enc.train.trainable:
            return [modality]  # a tuned encoder is its modality's own weights
        same = dataclasses.replace(enc, pooling="none")
        return [m for m in self.modalities if MODALITY_SPECS[m].encoder_input == "frames"
                and dataclasses.replace(self.encoders[m], pooling="none") == same]

    # -- the one entry point ------------------------------------------------------------------

    def featurize(self, files: MediaFiles, modalities: Sequence[str] | None = None, sample_id: str | None = None,
                  landmarks: Landmarks | None = None) -> Featurized:
        """Features of every requested modality that has an encoder; each modality succeeds or fails alone.

        landmarks: the sample's annotated landmarks, which a "landmarks:annotation" encoder reads.
        """
        return self.encode(self.decode(files, modalities, sample_id, landmarks))

    def decode(self, files: MediaFiles, modalities: Sequence[str] | None = None, sample_id: str | None = None,
               landmarks: Landmarks | None = None) -> Decoded:
        """The CPU half of `featurize`: cache hits, decoded audio and frames, face crops; no encoder runs.

        The result pickles, so a scale-out engine can decode in one process and `encode` in another.
        """
        wanted = [m for m in (modalities or self.modalities) if m in self.encoders]
        decoded = Decoded(Featurized({}, {}), sample_id)
        out = decoded.result
        if "landmarks" in wanted and self.encoders["landmarks"].model == LANDMARK_ANNOTATION:
            wanted.remove("landmarks")  # read from the annotation: no file to decode
            self._annotated_landmarks(landmarks, decoded)
        checked: dict[str, MediaError | None] = {}
        for kind, path in files.items():
            try:
                if isinstance(path, MediaError):
                    raise path
                check_file(path)
                checked[kind] = None
            except MediaError as exc:
                checked[kind] = exc
        hashes: dict[str, str] = {}

        def media_hash(kind: str) -> str:
            if kind not in hashes:
                from emoreason.features.hashing import file_content_hash

                hashes[kind] = file_content_hash(files[kind])
            return hashes[kind]

        by_source: dict[str, list[str]] = {}
        for m in wanted:
            kind = self._source(m, files, out)
            if kind is None:
                continue
            if checked[kind] is not None:
                out.absent[m] = Absence.from_error(m, checked[kind], file_checked=False)
                continue
            by_source.setdefault(kind, []).append(m)

        for kind, group in by_source.items():
            todo = [m for m in group if not self._from_cache(m, media_hash(kind) if self.cache else "", out, sample_id)]
            audio_here = [m for m in todo if m == "audio"]
            visual_here = [m for m in todo if m in VISUAL_MODALITIES]
            if audio_here:
                self._decode_step(decoded, ["audio"], lambda: {"audio": self._audio_wave(files[kind])})
            if visual_here:
                self._decode_step(decoded, visual_here, lambda: self._visual_inputs(files[kind], kind, visual_here, out))
        return decoded

    def encode(self, decoded: Decoded, modalities: Sequence[str] | None = None) -> Featurized:
        """The encoder half of `featurize`: runs the encoders on `decoded`'s pending inputs, rounds to fp16 and
        fills the cache. modalities: only these (one encoder's process in a scale-out engine); the rest stay
        pending for a later call. Returns the result, complete once nothing is pending."""
        return self.encode_many([decoded], modalities)[0]

    def encode_many(self, batch: Sequence[Decoded], modalities: Sequence[str] | None = None) -> list[Featurized]:
        """`encode` of several samples, each encoder called once for all of them (serving's media stage batches
        concurrent requests this way): the samples' inputs to one forward pass are stacked, run, and split back.
        With one sample this is `encode`. Nothing is padded: crops, frames and clips are resized to the model's
        input size by its processor, and waveforms are stacked only with waveforms of the same length."""
        steps: dict[tuple, list[tuple[int, list[str]]]] = {}  # one encoder call -> (sample, modalities it yields)
        for i, decoded in enumerate(batch):
            ready = [m for m in decoded.pending if modalities is None or m in modalities]
            frame_modalities = [m for m in ready if MODALITY_SPECS[m].encoder_input == "frames"]
            covered: set[str] = set()
            for m in ready:
                if m in covered:
                    continue
                group = [m]
                if MODALITY_SPECS[m].encoder_input == "frames":
                    group = [g for g in self._forward_group(m) if g in frame_modalities]
                covered |= set(group)
                steps.setdefault((m, tuple(group)), []).append((i, group))
        computed: list[dict[str, torch.Tensor]] = [{} for _ in batch]
        for (m, group), members in steps.items():
            inputs = [batch[i].pending[m] for i, _ in members]
            for (i, _), outputs in zip(members, self._encode_step(m, list(group), inputs)):
                computed[i] |= outputs
        for decoded, tensors in zip(batch, computed):
            out = decoded.result
            for m, tensor in tensors.items():
                del decoded.pending[m]
                tensor = tensor.to(torch.float16)  # the cache's precision, so live and cached inputs are equal
                out.features[m] = tensor
                if self.cache is not None:
                    metadata = {"id": decoded.sample_id or ""}
                    if m == "face" and out.faces is not None:
                        metadata["face_record"] = out.faces.model_dump_json()
                    self.cache.put(m, out.cache_keys[m], tensor, metadata)
        return [d.result for d in batch]

    def _encode_step(self, modality: str, group: list[str], inputs: list[np.ndarray]) -> list[dict[str, torch.Tensor]]:
        """One encoder's work for several samples: per sample, modality -> its features ([t, d] before fp16)."""
        source = MODALITY_SPECS[modality].encoder_input
        encoder = self.encoder(modality)
        if modality == "audio":
            return [{modality: t} for t in encoder.encode_audios(inputs)]  # [t, d] each
        if source == "clips":
            return [{modality: t} for t in encoder.encode_videos(inputs)]  # [t, d] each
        if source == "landmarks":
            return [{modality: encoder.encode_landmarks(x)} for x in inputs]  # [k, 136] each
        if source == "face_crops":
            def run(images: np.ndarray) -> dict[str, torch.Tensor]:
                return {modality: encoder.encode_images(images)}  # [n, k, d]
        else:
            def run(images: np.ndarray) -> dict[str, torch.Tensor]:
                return self._frame_outputs(modality, group, images)  # name -> [n, k, d]
        results: list[dict[str, torch.Tensor]] = [{} for _ in inputs]
        by_shape: dict[tuple, list[int]] = {}
        for i, images in enumerate(inputs):  # frames of one resolution stack into one array
            by_shape.setdefault(images.shape[1:], []).append(i)
        for rows in by_shape.values():
            counts = [len(inputs[i]) for i in rows]
            stacked = inputs[rows[0]] if len(rows) == 1 else np.concatenate([inputs[i] for i in rows])  # [sum n, h, w, 3]
            for name, tensor in run(stacked).items():
                for i, part in zip(rows, tensor.split(counts)):
                    results[i][name] = part.flatten(0, 1)  # [n * k, d]
        return results

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _source(modality: str, files: MediaFiles, out: Featurized) -> str | None:
        spec = next(s for s in MODALITY_TABLE if s.name == modality)
        kind = next((k for k in spec.sources if k in files), None)
        if kind is None:
            message = spec.lacks_message(set(files))
            out.absent[modality] = Absence(modality, spec.absent_reason, message, fault=False)
        return kind

    def _key(self, modality: str, media_hash: str) -> str:
        from emoreason.encoders.frozen import model_fingerprint

        enc = self.encoders[modality]
        return self.cache.make_key(modality, media_hash, enc.model, model_fingerprint(enc.model), self.settings(modality))

    def _from_cache(self, modality: str, media_hash: str, out: Featurized, sample_id: str | None) -> bool:
        if self.cache is None:
            return False
        key = self._key(modality, media_hash)
        out.cache_keys[modality] = key
        path = self.cache.path_for(modality, key)
        if not path.exists():
            return False
        try:
            features, metadata = read_feature_file(path)
        except FeatureFileError as exc:
            # A damaged entry is never used: say so, and let the caller recompute (and overwrite) it.
            print(f"featurizer: {path} (sample {sample_id}, {modality}): {exc.reason}; recomputing", file=sys.stderr)
            return False
        if modality == "face":
            # The face record travels in the entry's metadata, so a cache hit still knows which frames had faces.
            if "face_record" not in metadata:
                return False
            out.faces = FaceRecord.model_validate(json.loads(metadata["face_record"]))
        out.features[modality] = features
        return True

    @staticmethod
    def _decode_step(decoded: Decoded, modalities: list[str], compute) -> None:
        """Run one decode; a MediaError makes each of `modalities` absent (unless already absent for its own reason)."""
        try:
            decoded.pending |= compute()
        except MediaError as exc:
            for m in modalities:
                if m not in decoded.result.absent:
                    decoded.result.absent[m] = Absence.from_error(m, exc)

    def _audio_wave(self, path: Path) -> np.ndarray:
        from emoreason.media.audio import decode_audio

        wave = decode_audio(path, AUDIO_SAMPLE_RATE, self.media.audio.max_seconds)  # [n]
        if len(wave) < MIN_AUDIO_SAMPLES:
            raise MediaError("empty", path, f"audio of {len(wave)} samples is shorter than one encoder frame")
        return wave

    def _decode_frames(self, path: Path, kind: str) -> _Frames:
        if kind == "video":
            from emoreason.media.video import decode_frames

            decoded = decode_frames(path, self.media.video)
            return _Frames(decoded.frames, [round(float(t), 4) for t in decoded.times])
        from emoreason.media.image import decode_image

        return _Frames(decode_image(path)[None], [0.0])

    def _visual_inputs(self, path: Path, kind: str, modalities: list[str], out: Featurized) -> dict[str, np.ndarray]:
        """modality -> its encoder's input: one decode of the frames feeds face, frame, video and landmarks."""
        decoded = self._decode_frames(path, kind)
        out.frames_decoded = len(decoded.frames)
        inputs: dict[str, np.ndarray] = {}
        for m in modalities:
            source = MODALITY_SPECS[m].encoder_input
            if source == "face_crops":
                crops = self._face_crops(decoded, out)
                if crops is not None:
                    inputs[m] = crops
            elif source == "landmarks":
                points = self._detected_landmarks(decoded, out)
                if points is not None:
                    inputs[m] = points
            else:
                inputs[m] = decoded.frames  # "clips" and "frames" read the frames themselves
        return inputs

    def _frame_outputs(self, modality: str, group: list[str], frames: np.ndarray) -> dict[str, torch.Tensor]:
        """`modality` and the wanted modalities of `group` sharing its forward pass: name -> [n, tokens, d]."""
        if len(group) == 1 and (self.encoders[modality].output != "hidden" or self.encoders[modality].train.trainable):
            # encode_images is pixel_values + image_tokens, the two halves a tuned encoder's training runs.
            return {modality: self.encoder(modality).encode_images(frames)}
        poolings = {m: self.encoders[m].pooling for m in group}
        return self.encoder(modality).encode_image_outputs(frames, poolings)  # one forward, every pooling

    def _annotated_landmarks(self, landmarks: Landmarks | None, decoded: Decoded) -> None:
        out = decoded.result
        if landmarks is None:
            out.absent["landmarks"] = Absence("landmarks", "no_landmarks", "sample has no landmarks annotation",
                                              fault=False)
            return
        from emoreason.features.hashing import settings_hash

        if self._from_cache("landmarks", settings_hash(landmarks.model_dump(mode="json")), out, decoded.sample_id):
            return

        def sampled_points() -> dict[str, np.ndarray]:
            from emoreason.media.video import sample_frame_indices

            points = np.asarray(landmarks.points)  # [frames, 68, 2]
            if self.media.video.fps is not None and landmarks.fps is None:
                raise MediaError("bad_field", None, "landmarks.fps is needed to sample annotated frames by media.video.fps")
            indices = sample_frame_indices(len(points), landmarks.fps or 1.0, self.media.video)
            return {"landmarks": points[indices]}

        self._decode_step(decoded, ["landmarks"], sampled_points)

    def _detected_landmarks(self, decoded: _Frames, out: Featurized) -> np.ndarray | None:
        """The main face's landmarks per sampled frame [k, 68, 2]; None (and an absence) when no frame has them."""
        from emoreason.media.faces import main_face_landmarks

        points, _ = main_face_landmarks(decoded.frames, self.detector)
        if len(points) == 0:
            out.absent["landmarks"] = Absence("landmarks", "no_landmarks",
                                              f"no face landmarks found in any of {len(decoded.times)} sampled frames",
                                              fault=False)
            return None
        return points

    def _face_crops(self, decoded: _Frames, out: Featurized) -> np.ndarray | None:
        """The main face's crop per frame [k, size, size, 3]; None (and an absence) when no frame has one."""
        from emoreason.media.faces import crop_main_faces

        faces = self.media.faces
        crops, missing = crop_main_faces(decoded.frames, self.detector, faces.margin, faces.size, faces.detect_every,
                                         faces.detect_short_side)
        out.faces = FaceRecord(frame_times=decoded.times, missing=missing)
        if len(crops) == 0:
            out.absent["face"] = Absence("face", "no_face", f"no face found in any of {len(decoded.times)} sampled frames", fault=False)
            return None
        return crops
