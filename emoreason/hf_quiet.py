"""Silence third-party output that tells the user nothing: transformers' per-file progress bars where
we load or save many small checkpoints, and DeepSpeed's CPU-fallback notice."""

from __future__ import annotations

import contextlib
import logging as std_logging
from collections.abc import Iterator

DEEPSPEED_LOGGER = "DeepSpeed"
DEEPSPEED_CPU_NOTICE = "Setting accelerator to CPU"


def _not_cpu_notice(record: std_logging.LogRecord) -> bool:
    return DEEPSPEED_CPU_NOTICE not in record.getMessage()


def quiet_deepspeed_cpu_notice() -> None:
    """Drop DeepSpeed's "Setting accelerator to CPU ..." warning; its other messages still show.

    peft and transformers import deepspeed whenever it is installed (the train extra), even for runs
    that never use it, and on a machine without a GPU its accelerator probe warns each time. A filter
    on its named logger outlives DeepSpeed's own setup of that logger (which resets level and handlers,
    not filters), so this works before or after deepspeed is imported.
    """
    logger = std_logging.getLogger(DEEPSPEED_LOGGER)
    if _not_cpu_notice not in logger.filters:
        logger.addFilter(_not_cpu_notice)


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
