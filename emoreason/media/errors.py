"""Why a media file could not be used, as a fixed vocabulary that reports and HTTP errors share."""

from __future__ import annotations

import os

# reason code -> what a report or an error message says
REASONS: dict[str, str] = {
    "missing_file": "file not found",
    "empty": "zero-length media",
    "unreadable": "unreadable or corrupt file",
    "not_media": "not a media file",
    "no_video": "no video track",
    "no_audio": "no audio track",
    "no_face": "no face found",
    "too_long": "media longer than the configured limit",
    "bad_field": "wrong field type or invalid record",
}


class MediaError(Exception):
    """A media file that cannot be used; `reason` is a key of REASONS."""

    def __init__(self, reason: str, path: str | os.PathLike | None, detail: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown media error reason {reason!r}")
        self.reason = reason
        self.path = None if path is None else str(path)
        self.detail = detail
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{REASONS[reason]}" + (f" ({detail})" if detail else ""))

    def to_json(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": str(self)}
        if self.path:
            out["path"] = self.path
        return out


def check_file(path: str | os.PathLike) -> None:
    """Raise MediaError for the failures visible without decoding: missing or zero-length."""
    if not os.path.exists(path):
        raise MediaError("missing_file", path)
    if not os.path.isfile(path):
        raise MediaError("unreadable", path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise MediaError("empty", path)
