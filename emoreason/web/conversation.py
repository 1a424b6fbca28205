"""One browser session's conversation over `emoreason chat`'s clients (in-process engine or a server).

The web app keeps what the terminal chat keeps: turns, and media attached for the next message.
Replies come from `LocalChat`/`RemoteChat` unchanged, so the app sends exactly what `chat` sends
(against a server, files travel as base64 data URLs).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Iterator

from emoreason.serving.chat import ChatError, LocalChat, RemoteChat, Sampling, Turn
from emoreason.serving.engine import InferenceEngine, MediaInput
from emoreason.web.uploads import UploadError


@dataclasses.dataclass
class Conversation:
    """Per browser session (Gradio copies the initial value for each one)."""

    turns: list[Turn] = dataclasses.field(default_factory=list)
    pending: list[MediaInput] = dataclasses.field(default_factory=list)
    """Media attached to the next user message."""

    def media(self) -> list[MediaInput]:
        return [m for t in self.turns for m in t.media] + self.pending

    def attach(self, item: MediaInput) -> None:
        # A conversation is one sample to the model: at most one file of each kind.
        if any(m.kind == item.kind for m in self.media()):
            raise UploadError(f"this conversation already has a {item.kind}; press Reset to start over with another")
        self.pending.append(item)

    def reset(self) -> None:
        self.turns.clear()
        self.pending.clear()


class LocalBackend:
    def __init__(self, engine: InferenceEngine):
        self.engine = engine
        self.description = f"model {engine.model_name} (in this process)"

    def client(self, sampling: Sampling) -> LocalChat:
        return LocalChat(self.engine, sampling)


class RemoteBackend:
    """A server that may be down at start or later: each message tries to connect until one succeeds."""

    def __init__(self, url: str, api_key: str | None):
        self.url = url
        self.api_key = api_key
        self.description = f"server {url}"
        self._connected: RemoteChat | None = None
        self._lock = threading.Lock()

    def client(self, sampling: Sampling) -> RemoteChat:
        """ChatError naming the server and what it answered when it cannot be reached or refuses the key."""
        with self._lock:
            if self._connected is None:
                self._connected = RemoteChat(self.url, self.api_key, sampling)
                self.description = f"model {self._connected.model} at {self.url}"
        # One connection, and each message its own sampling: sessions may differ.
        chat = copy.copy(self._connected)
        chat.sampling = sampling
        return chat


Backend = LocalBackend | RemoteBackend


def stream_reply(backend: Backend, conversation: Conversation, text: str, sampling: Sampling) -> Iterator[str]:
    """The reply so far, growing as it streams; the conversation keeps the turn only once it is complete.

    ChatError (bad media, a refused request, the server down) leaves the conversation as it was,
    pending media included, so the user can fix the problem and send again.
    """
    turns = conversation.turns + [Turn("user", text, list(conversation.pending))]
    pieces: list[str] = []
    for delta in backend.client(sampling).stream(turns):
        pieces.append(delta)
        yield "".join(pieces)
    conversation.turns = turns + [Turn("assistant", "".join(pieces))]
    conversation.pending = []


__all__ = ["Backend", "ChatError", "Conversation", "LocalBackend", "RemoteBackend", "Sampling", "stream_reply"]
