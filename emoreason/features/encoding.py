"""Encoder inputs -> features: which modalities share one encoder forward pass, and one encoder's work for
several samples at once (stacked where that leaves each sample's numbers unchanged, split back after)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from emoreason.constants import MODALITY_SPECS
from emoreason.encoders.config import EncoderConfig
from emoreason.features.results import Decoded


def forward_group(encoders: Mapping[str, EncoderConfig], modalities: Sequence[str], modality: str) -> list[str]:
    """The modalities (of `modalities`, the configured ones) computed in the same encoder forward pass as
    `modality`: those reading the frames with one checkpoint, layer and output (itself first when alone)."""
    enc = encoders[modality]
    if MODALITY_SPECS[modality].encoder_input != "frames" or enc.output != "hidden" or enc.train.trainable:
        return [modality]  # a tuned encoder is its modality's own weights
    same = dataclasses.replace(enc, pooling="none")
    return [m for m in modalities if MODALITY_SPECS[m].encoder_input == "frames"
            and dataclasses.replace(encoders[m], pooling="none") == same]


def encoder_calls(batch: Sequence[Decoded], modalities: Sequence[str] | None,
                  group_of: Callable[[str], list[str]]) -> dict[tuple, list[tuple[int, list[str]]]]:
    """(modality whose encoder runs, the modalities its forward yields) -> [(sample index, what it yields for it)],
    for every pending input of `modalities` (None: all)."""
    steps: dict[tuple, list[tuple[int, list[str]]]] = {}
    for i, decoded in enumerate(batch):
        ready = [m for m in decoded.pending if modalities is None or m in modalities]
        frame_modalities = [m for m in ready if MODALITY_SPECS[m].encoder_input == "frames"]
        covered: set[str] = set()
        for m in ready:
            if m in covered:
                continue
            group = [m]
            if MODALITY_SPECS[m].encoder_input == "frames":
                group = [g for g in group_of(m) if g in frame_modalities]
            covered |= set(group)
            steps.setdefault((m, tuple(group)), []).append((i, group))
    return steps


def encode_step(encoder, encoders: Mapping[str, EncoderConfig], modality: str, group: list[str],
                inputs: list[np.ndarray]) -> list[dict[str, torch.Tensor]]:
    """One encoder's work for several samples: per sample, modality -> its features ([t, d] before fp16).

    Nothing is padded: crops, frames and clips are resized to the model's input size by its processor, and
    frames of one resolution are stacked into one call."""
    source = MODALITY_SPECS[modality].encoder_input
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
            return frame_outputs(encoder, encoders, modality, group, images)  # name -> [n, k, d]
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


def frame_outputs(encoder, encoders: Mapping[str, EncoderConfig], modality: str, group: list[str],
                  frames: np.ndarray) -> dict[str, torch.Tensor]:
    """`modality` and the wanted modalities of `group` sharing its forward pass: name -> [n, tokens, d]."""
    if len(group) == 1 and (encoders[modality].output != "hidden" or encoders[modality].train.trainable):
        # encode_images is pixel_values + image_tokens, the two halves a tuned encoder's training runs.
        return {modality: encoder.encode_images(frames)}
    poolings = {m: encoders[m].pooling for m in group}
    return encoder.encode_image_outputs(frames, poolings)  # one forward, every pooling
