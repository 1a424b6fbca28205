"""PNG figures without a display: matplotlib on its Agg backend, written atomically, titled inside and in the file.

matplotlib comes with the `eval` and `train` extras; callers that can do without a figure catch ImportError.
"""

from __future__ import annotations

from pathlib import Path

from emoreason.atomic import atomic_path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, title: str | None = None) -> Path:
    """Write `fig` to `path`; `title` also goes into the PNG's Title text chunk, so a copied file still says what it is."""
    path = Path(path)
    metadata = {"Title": title} if title else None
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight", metadata=metadata)
    return path
