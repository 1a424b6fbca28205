"""Whether progress bars draw: only on a terminal, so a redirected log gets no hundreds of redrawn frames.

A bar redraws its line with carriage returns; in a file or a CI log each redraw becomes another
line. Every bar of the project (prep, infer, the judge, the synthetic set, the HF Trainer's) asks
here. `EMOREASON_PROGRESS=1` forces bars on and `EMOREASON_PROGRESS=0` off, whatever the stream.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

PROGRESS_ENV = "EMOREASON_PROGRESS"


def show_progress(stream: TextIO | None = None) -> bool:
    """True when bars should draw on `stream` (default stderr, where tqdm writes)."""
    forced = os.environ.get(PROGRESS_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    stream = stream if stream is not None else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream without a terminal behind it
        return False
