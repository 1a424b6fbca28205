"""Errors a request can earn, each with its HTTP status and OpenAI's {"error": {...}} body."""

from __future__ import annotations

from emoreason.media.errors import REASONS, MediaError

# MediaError reason -> status. A file that is not media at all is an unsupported media type; one
# over the duration or pixel limit is too large; a missing file, a folder or a bad field is the
# client's mistake in the request itself; the rest (corrupt, empty, no track) are well-formed
# requests we cannot process.
MEDIA_STATUS: dict[str, int] = {
    "missing_file": 400,
    "not_a_file": 400,
    "bad_field": 400,
    "outside_root": 403,
    "not_media": 415,
    "too_long": 413,
    "too_large": 413,
}


class APIError(Exception):
    def __init__(self, status: int, message: str, code: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        error = {"message": self.message, "type": kind, "code": self.code}
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def media_api_error(exc: MediaError, names: dict[str, str]) -> APIError:
    """An APIError for a MediaError, naming files as the client did: server paths never leave the server.

    `names` maps resolved file paths to what the client sent (its relative path, or "data URL #2").
    """
    where = names.get(exc.path or "", "media")
    detail = hide_paths(exc.detail, names)
    message = f"{where}: {REASONS[exc.reason]}" + (f" ({detail})" if detail else "")
    return APIError(MEDIA_STATUS.get(exc.reason, 422), message, exc.reason)


def hide_paths(text: str, names: dict[str, str]) -> str:
    """`text` with each resolved path replaced by the client's name for it."""
    for path, name in names.items():
        text = text.replace(path, name)
    return text
