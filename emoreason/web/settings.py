"""What the web app is started with: where it may read media and results, its limits and its defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from emoreason.web.inspection import Inspector
from emoreason.web.uploads import UploadLimits


@dataclasses.dataclass
class WebSettings:
    limits: UploadLimits
    media_root: Path | None = None
    """Uploads are always allowed; names picked or played from here are confined to it, as `serve` confines them."""
    results: Path | None = None
    """A results JSON or leaderboard folder opened at start."""
    results_root: Path = dataclasses.field(default_factory=Path.cwd)
    """Results paths typed into the app are confined to this folder."""
    inspector: Inspector | None = None
    inspect_note: str = ""
    """Why there is no inspector (e.g. --url without --inspect-model)."""
    max_tokens: int = 256
    temperature: float = 0.0
