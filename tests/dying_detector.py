"""A face detector plug-in that kills its own process while a marker file exists: a media worker dying mid-request.

Each death consumes one marker (an atomic rename, so two workers never both take the same one); with no
marker left it is the Haar detector.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from emoreason.media.faces import HaarFaceDetector


class DyingDetector(HaarFaceDetector):
    def __init__(self, markers: str, **kwargs):
        super().__init__(**kwargs)
        self.markers = Path(markers)

    def detect(self, frame):
        for marker in sorted(self.markers.glob("die-*")):
            try:
                marker.rename(marker.with_name("died-" + marker.name))
            except FileNotFoundError:  # another worker took it
                continue
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
        return super().detect(frame)
