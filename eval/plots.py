"""Figures for a results file: the confusion matrix and per-class recall, as PNG, titled with the run's name."""

from __future__ import annotations

from pathlib import Path

from emoreason.eval.classification import UNMATCHED, ClassificationResult
from emoreason.figures import pyplot, save_png


def _title(what: str, run_name: str | None) -> str:
    return f"{run_name}: {what}" if run_name else what


def confusion_png(result: ClassificationResult, path: str | Path, run_name: str | None = None) -> Path:
    plt = pyplot()
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
    title = _title("confusion", run_name)
    ax.set_title(title)
    try:
        return save_png(fig, path, title=title)
    finally:
        plt.close(fig)


def recall_png(result: ClassificationResult, path: str | Path, run_name: str | None = None) -> Path:
    plt = pyplot()
    labels = list(result.per_class_recall)
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(labels), 3))
    ax.bar(labels, [result.per_class_recall[label] for label in labels])
    ax.axhline(result.uar, linestyle="--", color="gray", label=f"UAR {result.uar:.3f}")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall")
    ax.legend()
    ax.tick_params(axis="x", rotation=45)
    title = _title("per-class recall", run_name)
    ax.set_title(title)
    try:
        return save_png(fig, path, title=title)
    finally:
        plt.close(fig)
