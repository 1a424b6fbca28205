"""Adapters from public emotion data set annotation formats into the emoreason sample schema.

Each adapter reads one annotation file and returns `list[Sample]` with media paths relative to the
data root. With `errors=None` the first bad row raises a `SchemaError` naming the file, the line (or
JSON key), the field and what was expected; with a list, bad rows are appended to it and skipped.
See docs/adapters.md for every format with an example.
"""

from __future__ import annotations

from collections.abc import Callable

from emoreason.data_prep.adapters.dfew import read_dfew
from emoreason.data_prep.adapters.emer import read_emer
from emoreason.data_prep.adapters.generic_csv import read_generic_csv
from emoreason.data_prep.adapters.mafw import read_mafw
from emoreason.data_prep.adapters.mer2023 import read_mer2023
from emoreason.data_prep.adapters.mer2025 import read_mer2025_ov, read_mer2025_reason
from emoreason.data_prep.adapters.merr import read_merr_coarse, read_merr_fine
from emoreason.data_prep.adapters.records import AnnotationError
from emoreason.schema import Sample

ADAPTERS: dict[str, Callable[..., list[Sample]]] = {
    "mer2023": read_mer2023,
    "merr-coarse": read_merr_coarse,
    "merr-fine": read_merr_fine,
    "emer": read_emer,
    "mer2025-ov": read_mer2025_ov,
    "mer2025-reason": read_mer2025_reason,
    "dfew": read_dfew,
    "mafw": read_mafw,
    "generic-csv": read_generic_csv,
}
"""Format name -> adapter. All take (path, *, errors=None); generic-csv takes `mapping`, the others
`video_dir` and `ext`."""

__all__ = [
    "ADAPTERS",
    "AnnotationError",
    "read_dfew",
    "read_emer",
    "read_generic_csv",
    "read_mafw",
    "read_mer2023",
    "read_mer2025_ov",
    "read_mer2025_reason",
    "read_merr_coarse",
    "read_merr_fine",
]
