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

This class orders the steps; each step is its own module: `sources` (which file feeds which modality),
`decoding` (waveform, frames, annotated landmarks), `face_inputs` (crops and detected landmarks from one
detection per frame), `encoding` (forward groups, batched encoder calls), `cache_entries` (keys, hits and
writes) and `results` (the result and failure types, re-exported here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emoreason.constants import AUDIO_SAMPLE_RATE, MODALITY_SPECS, MODALITY_TABLE, VISUAL_MODALITIES
from emoreason.encoders.config import EncoderConfig
from emoreason.encoders.landmarks import ANNOTATION as LANDMARK_ANNOTATION
from emoreason.encoders.landmarks import DETECTOR as LANDMARK_DETECTOR
from emoreason.features import cache_entries, decoding, encoding
from emoreason.features.decoding import MIN_AUDIO_SAMPLES, decode_step
from emoreason.features.face_inputs import FACE_INPUTS, face_inputs
from emoreason.features.media_config import MediaConfig
from emoreason.features.results import ABSENT_REASONS, Absence, Decoded, EncoderLoadError, Featurized, MediaFiles
from emoreason.features.sources import group_by_source, sample_files
from emoreason.schema import Landmarks

__all__ = ["ABSENT_REASONS", "MIN_AUDIO_SAMPLES", "Absence", "Decoded", "EncoderLoadError", "Featurized", "Featurizer",
           "MediaFiles", "sample_files"]


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
            # Modalities sharing a forward pass share one loaded encoder (each pools its own way).
            return load_encoder(self.encoders[self._forward_group(modality)[0]])
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

    def forward_groups(self) -> list[list[str]]:
        """The configured modalities partitioned by encoder forward pass: what one encoder process must run together."""
        groups: list[list[str]] = []
        for m in self.modalities:
            if not any(m in g for g in groups):
                groups.append(self._forward_group(m))
        return groups

    def _forward_group(self, modality: str) -> list[str]:
        return encoding.forward_group(self.encoders, self.modalities, modality)

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
        by_source = group_by_source(wanted, files, out)
        for kind, group in by_source.items():
            media_hash = ""
            if self.cache is not None:
                from emoreason.features.hashing import file_content_hash

                media_hash = file_content_hash(files[kind])
            todo = [m for m in group if not self._from_cache(m, media_hash, out, sample_id)]
            audio_here = [m for m in todo if m == "audio"]
            visual_here = [m for m in todo if m in VISUAL_MODALITIES]
            if audio_here:
                decode_step(decoded, ["audio"], lambda: {"audio": decoding.audio_wave(files[kind], self.media)})
            if visual_here:
                decode_step(decoded, visual_here, lambda: self._visual_inputs(files[kind], kind, visual_here, out))
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
        computed: list[dict[str, torch.Tensor]] = [{} for _ in batch]
        for (m, group), members in encoding.encoder_calls(batch, modalities, self._forward_group).items():
            inputs = [batch[i].pending[m] for i, _ in members]
            outputs = encoding.encode_step(self.encoder(m), self.encoders, m, list(group), inputs)
            for (i, _), features in zip(members, outputs):
                computed[i] |= features
        for decoded, tensors in zip(batch, computed):
            out = decoded.result
            for m, tensor in tensors.items():
                del decoded.pending[m]
                tensor = tensor.to(torch.float16)  # the cache's precision, so live and cached inputs are equal
                out.features[m] = tensor
                if self.cache is not None:
                    cache_entries.write_entry(self.cache, m, tensor, out, decoded.sample_id)
        return [d.result for d in batch]

    # -- internals ----------------------------------------------------------------------------

    def _from_cache(self, modality: str, media_hash: str, out: Featurized, sample_id: str | None) -> bool:
        if self.cache is None:
            return False
        key = cache_entries.entry_key(self.cache, self.encoders[modality], modality, media_hash, self.settings(modality))
        return cache_entries.read_hit(self.cache, modality, key, out, sample_id)

    def _visual_inputs(self, path: Path, kind: str, modalities: list[str], out: Featurized) -> dict[str, np.ndarray]:
        """modality -> its encoder's input: one decode of the frames feeds face, frame, video and landmarks."""
        frames = decoding.sampled_frames(path, kind, self.media)
        out.frames_decoded = len(frames.frames)
        faced = [m for m in modalities if MODALITY_SPECS[m].encoder_input in FACE_INPUTS]
        from_faces = face_inputs(frames, faced, self.detector, self.media.faces, out) if faced else {}  # detector built only if needed
        inputs = {}
        for m in modalities:  # in compute order
            if m in faced:
                if m in from_faces:
                    inputs[m] = from_faces[m]
            else:
                inputs[m] = frames.frames  # "clips" and "frames" read the frames themselves
        return inputs

    def _annotated_landmarks(self, landmarks: Landmarks | None, decoded: Decoded) -> None:
        out = decoded.result
        if landmarks is None:
            out.absent["landmarks"] = Absence("landmarks", "no_landmarks", "sample has no landmarks annotation",
                                              fault=False)
            return
        from emoreason.features.hashing import settings_hash

        if self._from_cache("landmarks", settings_hash(landmarks.model_dump(mode="json")), out, decoded.sample_id):
            return
        decode_step(decoded, ["landmarks"], lambda: {"landmarks": decoding.sampled_annotation(landmarks, self.media)})
