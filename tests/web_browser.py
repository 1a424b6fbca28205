"""Headless Chromium for the web-app tests: Debian's `chromium` driven by Playwright, never a downloaded browser.

The flags keep it from reaching out (this machine's closed network refuses many connections, and
a test must not depend on them) and give it a new empty profile each time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS_ENV = "EMOREASON_SCREENSHOTS"
"""A folder: every screenshot a test takes is also saved there, small enough for docs/ (how docs/web_saw.png is made)."""
DOC_WIDTH, DOC_MAX_HEIGHT, DOC_COLOURS = 960, 1200, 64


def chromium_executable() -> str:
    found = os.environ.get("EMOREASON_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("no Chromium: apt-get install -y chromium chromium-driver (what .ci/run does)")
    return found


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A Playwright browser context on the installed Chromium, with a fresh profile; closed on exit."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (the dev extra)")
    with tempfile.TemporaryDirectory(prefix="emoreason-chromium-") as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium_executable(), args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()


def screenshot(page, path: Path) -> Path:
    """A full-page PNG at `path` (and in $EMOREASON_SCREENSHOTS when set), checked to show something."""
    page.screenshot(path=str(path), full_page=True)
    check_not_blank(path)
    if os.environ.get(SCREENSHOTS_ENV):
        target = Path(os.environ[SCREENSHOTS_ENV])
        target.mkdir(parents=True, exist_ok=True)
        save_small(path, target / path.name)
    return path


def save_small(source: Path, target: Path) -> None:
    """The top of the page, DOC_WIDTH wide, in a DOC_COLOURS palette: tens of KB instead of a megabyte."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    scale = DOC_WIDTH / image.width
    image = image.resize((DOC_WIDTH, round(image.height * scale)), Image.LANCZOS)
    image = image.crop((0, 0, DOC_WIDTH, min(image.height, DOC_MAX_HEIGHT)))
    image.quantize(DOC_COLOURS).save(target, optimize=True)


def check_not_blank(path: Path) -> None:
    """Not a golden image: a page that rendered has many colours and real contrast, a blank one has neither."""
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"))  # [h, w, 3]
    colours = len(np.unique(pixels.reshape(-1, 3)[:: max(1, pixels.size // 3 // 200_000)], axis=0))
    assert colours > 50, f"{path}: only {colours} distinct colours; the page looks blank"
    assert float(pixels.std()) > 10, f"{path}: almost uniform (std {pixels.std():.1f}); the page looks blank"
