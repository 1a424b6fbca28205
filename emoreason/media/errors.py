"""Why a media file could not be used, as a fixed vocabulary that reports and HTTP errors share."""

from __future__ import annotations

import os
import stat

# reason code -> what a report or an error message says
REASONS: dict[str, str] = {
    "missing_file": "file not found",
    "not_a_file": "not a regular file (a directory, fifo, socket or device)",
    "outside_root": "path resolves outside the data root",
    "empty": "zero-length media",
    "unreadable": "unreadable or corrupt file",
    "not_media": "not a media file",
    "no_video": "no video track",
    "no_audio": "no audio track",
    "no_face": "no face found",
    "no_landmarks": "no facial landmarks (none annotated or detected)",
    "too_long": "media longer than the configured limit",
    "too_large": "image larger than the configured pixel limit",
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

    def __reduce__(self):
        # Exceptions pickle their message as the only argument; this one is rebuilt from its fields, so a result
        # carrying it crosses process boundaries (a scale-out engine's decode and encode stages).
        return type(self), (self.reason, self.path, self.detail)

    def to_json(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": str(self)}
        if self.path:
            out["path"] = self.path
        return out


def check_file(path: str | os.PathLike) -> None:
    """Raise MediaError for the failures visible without decoding: missing, not a file, zero-length.

    Never opens the file: opening a fifo would block until something writes to it.
    """
    if not os.path.exists(path):
        raise MediaError("missing_file", path)
    if not os.path.isfile(path):
        raise MediaError("not_a_file", path, f"it is {_file_kind(path)}; expected a media file")
    if os.path.getsize(path) == 0:
        raise MediaError("empty", path)


def _file_kind(path: str | os.PathLike) -> str:
    mode = os.stat(path).st_mode
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"
