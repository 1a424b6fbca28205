"""The built-in landmark encoder: 68 facial (x, y) points per frame -> one 136-d feature token per frame.

It has no weights. Each frame's points are shifted to their bounding box's corner and divided by its
longer side, so every coordinate lies in [0, 1] over the face (Face-LLaVA feeds landmarks normalised
over the face crop) and the features do not depend on where the face sits in the frame or its size.

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
    """[f, 68, 2] (x, y) in any unit -> [f, 136] float32 in [0, 1] over each frame's bounding box."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2) or len(points) == 0:
        raise ValueError(f"landmarks: expected [frames >= 1, {NUM_LANDMARKS}, 2] points, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks: expected finite coordinates")
    corner = points.min(axis=1, keepdims=True)  # [f, 1, 2]
    side = (points.max(axis=1, keepdims=True) - corner).max(axis=2, keepdims=True)  # [f, 1, 1]
    normalised = (points - corner) / np.maximum(side, 1e-6)  # [f, 68, 2]
    return torch.from_numpy(normalised.reshape(len(points), LANDMARK_WIDTH).astype(np.float32))


class LandmarkEncoder:
    """Stands where a FrozenEncoder stands for the landmarks modality (loaded by `load_encoder`)."""

    hidden_size = LANDMARK_WIDTH

    def __init__(self, cfg):
        self.cfg = cfg

    def encode_landmarks(self, points: np.ndarray) -> torch.Tensor:
        """[f, 68, 2] -> [k, 136]: one token per frame, then the config's pooling over frames."""
        return pool_tokens(normalise_landmarks(points)[None], self.cfg.pooling)[0]
