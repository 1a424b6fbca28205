"""Media the web app accepts: an upload or a pick from the media root, checked before the model sees it.

The checks are the server's own (`check_file`, `check_image`, `check_duration`, and `confined_path`
for names under the media root), so a file the app accepts is one `emoreason serve` would accept,
and a refusal names the file and the reason in the words of `emoreason.media.errors.REASONS`.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import os
from pathlib import Path

from emoreason.media.errors import REASONS, MediaError, check_file
from emoreason.media.image import MAX_IMAGE_PIXELS, check_image
from emoreason.media.paths import confined_path
from emoreason.media.sniff import open_failure_reason
from emoreason.serving.engine import MediaInput
from emoreason.serving.media_input import check_duration

MEDIA_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".png", ".jpg", ".jpeg", ".bmp", ".gif"})


class UploadError(Exception):
    """Media the app refuses; the message is shown to the user as it is."""


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_seconds: float | None = None
    max_pixels: int | None = MAX_IMAGE_PIXELS


def describe(exc: MediaError, name: str) -> str:
    """A MediaError in the user's terms: their name for the file, not a temporary path."""
    detail = exc.detail.replace(exc.path, name) if exc.path else exc.detail  # decoders quote the path they opened
    if exc.reason == "outside_root":
        # REASONS says "data root", prep's name for it; in this app every confined path is under the media root.
        return f"{name}: outside the media root" + (f" ({detail})" if detail else "")
    return f"{name}: {REASONS[exc.reason]}" + (f" ({detail})" if detail else "")


def check_media(path: str | os.PathLike, limits: UploadLimits, name: str | None = None) -> MediaInput:
    """The file as a MediaInput of the kind it holds (video, audio or image), or UploadError saying why not."""
    path = Path(path)
    name = name or path.name
    try:
        check_file(path)
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise UploadError(f"{name}: {size / 2**20:.2f} MiB is over the upload limit of {limits.max_bytes / 2**20:g} MiB")
        kind = _kind(path)
        if kind == "image":
            check_image(path, limits.max_pixels)
        else:
            check_duration(path, kind, limits.max_seconds)
    except MediaError as exc:
        raise UploadError(describe(exc, name)) from None
    return MediaInput(kind=kind, path=path)


def pick_from_root(name: str, media_root: str | os.PathLike | None, limits: UploadLimits) -> MediaInput:
    """A file named relative to the media root, confined to it exactly as `emoreason serve` confines paths."""
    if media_root is None:
        raise UploadError("this app has no media root (start it with --media-root DIR); upload the file instead")
    try:
        path = confined_path(name, media_root, "media root")
    except MediaError as exc:
        raise UploadError(describe(exc, name[:200])) from None
    return check_media(path, limits, name)


def list_media_root(media_root: str | os.PathLike | None, limit: int = 2000) -> list[str]:
    """Media files under the root, relative to it, sorted; at most `limit` (a huge root must not stall the page)."""
    if media_root is None:
        return []
    root = Path(media_root).resolve()
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for file in sorted(files):
            if Path(file).suffix.lower() in MEDIA_SUFFIXES:
                found.append(str((Path(folder) / file).relative_to(root)))
                if len(found) >= limit:
                    return found
    return found


def _kind(path: Path) -> str:
    """video when the file has a video track, audio when it has only sound, image for a still picture."""
    import av

    if (mimetypes.guess_type(path.name)[0] or "").startswith("image/"):
        return "image"
    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises InvalidDataError, OSError, ... for broken inputs
        error = MediaError(open_failure_reason(path), path, str(exc)[:200])
        try:
            check_image(path, None)  # an image under a name that does not say so
        except MediaError:
            raise error from None
        return "image"
    with container:
        if container.streams.video:
            return "video"
        if container.streams.audio:
            return "audio"
    raise MediaError("not_media", path, "no video or audio track")
