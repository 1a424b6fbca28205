"""The built-in landmark encoder: 68 facial (x, y) points per frame -> one 136-d feature token per frame.

It has no weights. Each frame's points are centred on their mean and divided by their RMS distance from
it (the scale step of a Procrustes alignment), so the features do not depend on where the face sits in
the frame or on its size, and they are zero-centred at unit scale: coordinates normalised only to [0, 1]
over the face box vary by ~0.02 between expressions, which a freshly initialised projector needs many
times more steps to pick up.

Where the points come from is the encoder's `model` name: "landmarks:annotation" reads the sample's
`landmarks` field (docs/schema.md); "landmarks:detector" asks `media.faces.detector` for the main
face's landmarks in every sampled frame (a FaceDetector plug-in that implements `detect_landmarks`).
"""

from __future__ import annotations

import numpy as np
import torch

from emoreason.constants import NUM_LANDMARKS
from emoreason.encoders.pooling import pool_tokens

ANNOTATION = "landmarks:annotation"
DETECTOR = "landmarks:detector"
LANDMARK_ENCODERS: dict[str, str] = {
    ANNOTATION: "the sample's landmarks annotation",
    DETECTOR: "the face detector's landmarks of the main face",
}
LANDMARK_WIDTH = 2 * NUM_LANDMARKS


def is_landmark_encoder(model: str) -> bool:
    return model.startswith("landmarks:")


def normalise_landmarks(points: np.ndarray) -> torch.Tensor:
    """[f, 68, 2] (x, y) in any unit -> [f, 136] float32, each frame centred and at unit RMS radius."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2) or len(points) == 0:
        raise ValueError(f"landmarks: expected [frames >= 1, {NUM_LANDMARKS}, 2] points, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks: expected finite coordinates")
    centred = points - points.mean(axis=1, keepdims=True)  # [f, 68, 2]
    radius = np.sqrt((centred**2).sum(axis=2).mean(axis=1))[:, None, None]  # [f, 1, 1]
    normalised = centred / np.maximum(radius, 1e-6)  # [f, 68, 2]
    return torch.from_numpy(normalised.reshape(len(points), LANDMARK_WIDTH).astype(np.float32))


class LandmarkEncoder:
    """Stands where a FrozenEncoder stands for the landmarks modality (loaded by `load_encoder`)."""

    hidden_size = LANDMARK_WIDTH

    def __init__(self, cfg):
        self.cfg = cfg

    def encode_landmarks(self, points: np.ndarray) -> torch.Tensor:
        """[f, 68, 2] -> [k, 136]: one token per frame, then the config's pooling over frames."""
        return pool_tokens(normalise_landmarks(points)[None], self.cfg.pooling)[0]
