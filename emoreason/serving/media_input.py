"""Turn the media parts of a request into files the engine can open, or refuse them.

A part's URL is either a base64 data URL, written to a per-request temporary folder (its size is
bounded by the server's body limit), or a path relative to the media root. Paths are confined to
the root: absolute paths, `..` components and symlinks resolving outside it are refused, so a
client can never make the server read /etc/passwd or another user's clips. Audio and video are
probed with PyAV before the engine sees them, to refuse clips over the duration limit without
decoding them, and images over the pixel limit from their header.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
import tempfile
from pathlib import Path

from emoreason.media.errors import MediaError, check_file
from emoreason.media.image import check_image
from emoreason.media.paths import confined_path
from emoreason.media.sniff import open_failure_reason
from emoreason.serving.api_errors import APIError
from emoreason.serving.engine import MediaInput
from emoreason.serving.protocol import AudioPart, ImagePart, InputAudioPart, MediaPart, VideoPart

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_AUDIO_FORMAT_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg", "m4a": "audio/mp4"}


class RequestMedia:
    """The media of one request: engine inputs, the client's name for each file, and the temp folder.

    Use as a context manager; closing deletes the decoded data URLs.
    """

    def __init__(self) -> None:
        self.inputs: list[MediaInput] = []
        self.names: dict[str, str] = {}  # resolved path -> the client's name for it
        self._tmp: tempfile.TemporaryDirectory | None = None

    def add(self, kind: str, path: Path, name: str) -> None:
        self.inputs.append(MediaInput(kind=kind, path=path))
        self.names[str(path)] = name

    def temp_dir(self) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="emoreason-media-")
        return Path(self._tmp.name)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RequestMedia:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def part_kind_and_url(part: MediaPart) -> tuple[str, str]:
    if isinstance(part, ImagePart):
        return "image", part.image_url.url
    if isinstance(part, VideoPart):
        return "video", part.video_url.url
    if isinstance(part, AudioPart):
        return "audio", part.audio_url.url
    assert isinstance(part, InputAudioPart)
    fmt = part.input_audio.format
    return "audio", f"data:{_AUDIO_FORMAT_MIME[fmt]};base64,{part.input_audio.data}"


def resolve_media(
    parts: list[MediaPart], media_root: Path | None, max_seconds: float | None, max_pixels: int | None, media: RequestMedia
) -> None:
    """Add each part to `media` as a checked file; raise APIError or MediaError for the first bad one."""
    for index, part in enumerate(parts):
        kind, url = part_kind_and_url(part)
        if url.startswith("data:"):
            name = f"data URL #{index + 1}"
            path = _write_data_url(url, kind, media.temp_dir() / f"media{index}", name)
        else:
            name = url[:200]
            path = _confined_path(url, media_root)
        media.add(kind, path, name)
        check_file(path)
        if kind == "image":
            check_image(path, max_pixels)  # a decompression bomb is refused from its header
        else:
            check_duration(path, kind, max_seconds)


def _write_data_url(url: str, kind: str, stem: Path, name: str) -> Path:
    header, comma, payload = url[len("data:") :].partition(",")
    params = header.split(";")
    mime = params[0].strip().lower()
    if not comma or "base64" not in params[1:]:
        raise APIError(400, f"{name}: expected data:<mime>;base64,<data>", "invalid_data_url")
    if mime.partition("/")[0] != kind:
        raise APIError(415, f"{name}: {kind} part with MIME type {mime or 'none'!r}; expected {kind}/*", "unsupported_media_type")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{name}: invalid base64 payload", "invalid_base64") from None
    # Decoders sniff contents, but an extension helps FFmpeg pick a demuxer for headerless formats (mp3, aac).
    path = stem.with_suffix(mimetypes.guess_extension(mime) or "")
    path.write_bytes(data)
    return path


def _confined_path(url: str, media_root: Path | None) -> Path:
    if _SCHEME.match(url):
        raise APIError(400, f"{url[:100]!r}: only data: URLs and paths relative to the media root are accepted", "unsupported_url")
    if media_root is None:
        raise APIError(403, "this server has no media root; send media as base64 data URLs", "media_root_disabled")
    try:
        return confined_path(url, media_root, "media root")
    except MediaError as exc:
        if exc.reason == "outside_root":
            raise APIError(403, f"{url[:100]!r}: {exc.detail}", "path_outside_media_root") from None
        raise APIError(400, f"{url[:100]!r}: {exc.detail}", "invalid_path") from None


def check_duration(path: Path, kind: str, max_seconds: float | None) -> None:
    """Refuse a clip without the track its kind needs, or longer than `max_seconds`, reading only headers."""
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises InvalidDataError, OSError, ... for broken inputs
        raise MediaError(open_failure_reason(path), path, str(exc)[:200]) from None
    with container:
        streams = container.streams.video if kind == "video" else container.streams.audio
        if not streams:
            raise MediaError("no_video" if kind == "video" else "no_audio", path)
        if max_seconds is None:
            return
        if container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            seconds = _demuxed_seconds(container, max_seconds)
        if seconds > max_seconds:
            raise MediaError("too_long", path, f"{seconds:.1f} s > limit {max_seconds:g} s")


def _demuxed_seconds(container, limit: float) -> float:
    """Duration of a container whose header has none (raw mp3/aac), demuxing no further than `limit`."""
    end = 0.0
    try:
        for packet in container.demux():
            if packet.pts is not None and packet.time_base is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                if end > limit:
                    break
    except Exception:  # a damaged tail: the engine's decoder reports it; the length so far is what counts here
        pass
    return end
