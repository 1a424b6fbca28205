"""The built-in landmark encoder: 68 facial (x, y) points per frame -> one 136-d feature token per frame.

It has no weights. Each frame's points are aligned onto a reference face by a similarity Procrustes
step (centred on their mean, divided by their RMS distance from it, rotated by the rotation that best
maps them onto the reference), and the reference is subtracted: a token is the face's deviation from
a neutral frontal face, in the reference's frame. So the features do not depend on where the face sits
in the frame, its size or its in-plane roll, and they carry what moves with the expression rather than
the face shape every sample shares. Why: centred and scaled points alone are the mean face shape
(norm ~8.2 on the synthetic set) plus expression differences of ~0.6, and a tiny roll moves every
point by more than that; a freshly initialised projector then maps every face to nearly the same token,
and the landmark-only model of tests/test_landmark_learning.py stayed at chance. Residuals from the
reference are the shape-model representation (Cootes et al., Active Shape Models, 1995).

The reference (`REFERENCE_SHAPE`) is the neutral frontal face in the iBUG 68-point order, centred and at
unit RMS radius: the geometry data_prep/synthetic_render.py draws for its neutral style
(tests/test_landmarks.py checks that the two agree).

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

# The neutral frontal face (see the module docstring), centred and at unit RMS radius.
REFERENCE_SHAPE = np.array([
    (-1.5055, -0.5102), (-1.4765, -0.1284), (-1.3909, 0.2387), (-1.2517, 0.5771), (-1.0645, 0.8736), (-0.8364, 1.1170),  # 0-16 jaw
    (-0.5761, 1.2979), (-0.2937, 1.4092), (0.0000, 1.4469), (0.2937, 1.4092), (0.5761, 1.2979), (0.8364, 1.1170),
    (1.0645, 0.8736), (1.2517, 0.5771), (1.3909, 0.2387), (1.4765, -0.1284), (1.5055, -0.5102),
    (-0.9033, -1.0823), (-0.7304, -1.1138), (-0.5574, -1.1401), (-0.3841, -1.1112), (-0.2108, -1.0823),  # 17-21 right brow
    (0.2108, -1.0823), (0.3841, -1.1112), (0.5574, -1.1401), (0.7304, -1.1138), (0.9033, -1.0823),  # 22-26 left brow
    (0.0000, -0.6909), (0.0000, -0.5052), (0.0000, -0.3196), (0.0000, -0.1339),  # 27-30 nose bridge
    (-0.1656, 0.0317), (-0.0828, 0.0167), (0.0000, 0.0016), (0.0828, 0.0167), (0.1656, 0.0317),  # 31-35 nostrils
    (-0.8431, -0.6909), (-0.7076, -0.8017), (-0.4366, -0.8017), (-0.3011, -0.6909), (-0.4366, -0.5801), (-0.7076, -0.5801),  # 36-41 right eye
    (0.3011, -0.6909), (0.4366, -0.8017), (0.7076, -0.8017), (0.8431, -0.6909), (0.7076, -0.5801), (0.4366, -0.5801),  # 42-47 left eye
    (-0.3914, 0.4834), (-0.2609, 0.4382), (-0.1305, 0.4382), (0.0000, 0.4382), (0.1305, 0.4382), (0.2609, 0.4382),  # 48-59 outer lips
    (0.3914, 0.4834), (0.2609, 0.5360), (0.1305, 0.5360), (0.0000, 0.5360), (-0.1305, 0.5360), (-0.2609, 0.5360),
    (-0.3327, 0.4834), (-0.1957, 0.4834), (0.0000, 0.4834), (0.1957, 0.4834), (0.3327, 0.4834), (0.1957, 0.4834),  # 60-67 inner lips
    (0.0000, 0.4834), (-0.1957, 0.4834),
])  # [68, 2] (x, y), image y down


def is_landmark_encoder(model: str) -> bool:
    return model.startswith("landmarks:")


def _centre_and_scale(points: np.ndarray) -> np.ndarray:
    """[f, 68, 2] -> [f, 68, 2]: each frame centred on its mean and divided by its RMS radius."""
    centred = points - points.mean(axis=1, keepdims=True)
    radius = np.sqrt((centred**2).sum(axis=2).mean(axis=1))[:, None, None]  # [f, 1, 1]
    return centred / np.maximum(radius, 1e-6)


def normalise_landmarks(points: np.ndarray) -> torch.Tensor:
    """[f, 68, 2] (x, y) in any unit -> [f, 136] float32: each frame aligned onto REFERENCE_SHAPE (similarity
    Procrustes, no reflection) minus REFERENCE_SHAPE."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2) or len(points) == 0:
        raise ValueError(f"landmarks: expected [frames >= 1, {NUM_LANDMARKS}, 2] points, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks: expected finite coordinates")
    shapes = _centre_and_scale(points)  # [f, 68, 2]
    reference = _centre_and_scale(REFERENCE_SHAPE[None])[0]  # [68, 2]
    # Orthogonal Procrustes: the rotation R minimising |shape @ R - reference| is U V^T of the SVD of
    # shape^T reference [f, 2, 2]; the sign flip keeps it a rotation, never a mirror image.
    u, _, vt = np.linalg.svd(shapes.transpose(0, 2, 1) @ reference)
    u[:, :, -1] *= np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)[:, None]
    residual = shapes @ (u @ vt) - reference  # [f, 68, 2]
    return torch.from_numpy(residual.reshape(len(points), LANDMARK_WIDTH).astype(np.float32))


class LandmarkEncoder:
    """Stands where a FrozenEncoder stands for the landmarks modality (loaded by `load_encoder`)."""

    hidden_size = LANDMARK_WIDTH

    def __init__(self, cfg):
        self.cfg = cfg

    def encode_landmarks(self, points: np.ndarray) -> torch.Tensor:
        """[f, 68, 2] -> [k, 136]: one token per frame, then the config's pooling over frames."""
        return pool_tokens(normalise_landmarks(points)[None], self.cfg.pooling)[0]
