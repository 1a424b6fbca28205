"""Figures for a results file: the confusion matrix and per-class recall, as PNG."""

from __future__ import annotations

from pathlib import Path

from emoreason.atomic import atomic_path
from emoreason.eval.classification import UNMATCHED, ClassificationResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    return path


def confusion_png(result: ClassificationResult, path: str | Path) -> Path:
    plt = _pyplot()
    columns = result.labels + [UNMATCHED]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(columns), 1.0 + 0.6 * len(result.labels)))
    ax.imshow(result.confusion, cmap="Blues")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(result.labels)), result.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    for i, row in enumerate(result.confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def recall_png(result: ClassificationResult, path: str | Path) -> Path:
    plt = _pyplot()
    labels = list(result.per_class_recall)
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(labels), 3))
    ax.bar(labels, [result.per_class_recall[label] for label in labels])
    ax.axhline(result.uar, linestyle="--", color="gray", label=f"UAR {result.uar:.3f}")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall")
    ax.legend()
    ax.tick_params(axis="x", rotation=45)
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)
