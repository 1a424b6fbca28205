"""Silence transformers' per-file progress bars where we load or save many small checkpoints."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_hf_progress() -> Iterator[None]:
    # Prep loads every encoder once per worker; a "Loading weights" bar per load buries our own bar.
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()
