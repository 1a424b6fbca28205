"""Continuous valence (or arousal) metrics, and MER2023's combined score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _arrays(references: Sequence[float], predictions: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    if not references:
        raise ValueError("no samples to score")
    y, p = np.asarray(references, dtype=np.float64), np.asarray(predictions, dtype=np.float64)
    if not (np.isfinite(y).all() and np.isfinite(p).all()):
        raise ValueError("valence values must be finite numbers")
    return y, p


def mse(references: Sequence[float], predictions: Sequence[float]) -> float:
    y, p = _arrays(references, predictions)
    return float(np.mean((y - p) ** 2))


def ccc(references: Sequence[float], predictions: Sequence[float]) -> float:
    """Lin's concordance correlation coefficient (population moments)."""
    y, p = _arrays(references, predictions)
    denominator = y.var() + p.var() + (y.mean() - p.mean()) ** 2
    if denominator == 0:  # both constant and equal: perfect agreement, though 0/0
        return 1.0
    return float(2 * np.mean((y - y.mean()) * (p - p.mean())) / denominator)


def mer2023_score(weighted_f1: float, valence_mse: float) -> float:
    """MER2023's combined metric: weighted F1 - 0.25 x valence MSE."""
    return weighted_f1 - 0.25 * valence_mse
