"""`emoreason chat`: a multi-turn terminal chat, with the model in-process or on a running server.

    emoreason chat --model runs/demo/export --media-root data/clips
    emoreason chat --url http://127.0.0.1:8000 [--api-key KEY]

Lines are user messages; replies print as they stream. Commands attach media to the next message
(`/video PATH`, `/audio PATH`, `/image PATH`), `/reset` starts over, `/quit` (or end of input) leaves.
Media stays part of the conversation for later turns, as in the server's API. Against a server, a
file is sent as a base64 data URL, so the server need not share this machine's files.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import mimetypes
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from emoreason.cli_args import HelpFormatter
from emoreason.constants import MEDIA_KINDS
from emoreason.media.errors import MediaError
from emoreason.media.paths import confined_path
from emoreason.serving.engine import GenerationRequest, InferenceEngine, MediaInput
from emoreason.config import ConfigError
from emoreason.serving.backends import BackendError
from emoreason.serving.client_options import add_model_or_server_arguments, engine_from_args
from emoreason.serving.trust_options import add_trust_arguments

MEDIA_COMMANDS = {f"/{kind}": kind for kind in MEDIA_KINDS}
HELP = "commands: /video PATH, /audio PATH, /image PATH (attach to your next message), /reset, /quit, /help"


class ChatError(Exception):
    """A turn the model could not answer (bad media, server refusal); the conversation goes on without it."""


@dataclasses.dataclass
class Turn:
    role: str  # "user" | "assistant"
    text: str
    media: list[MediaInput] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float = 1.0
    seed: int | None = None


class LocalChat:
    """Talks to an engine in this process."""

    def __init__(self, engine: InferenceEngine, sampling: Sampling):
        self.engine = engine
        self.sampling = sampling

    def stream(self, turns: list[Turn]) -> Iterator[str]:
        request = GenerationRequest(
            messages=[{"role": t.role, "content": t.text} for t in turns],
            media=[m for t in turns for m in t.media],
            max_tokens=self.sampling.max_tokens,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            seed=self.sampling.seed,
        )
        try:
            yield from self.engine.stream(request)
        except (MediaError, ValueError) as exc:  # what engines raise for bad media and refused requests
            raise ChatError(str(exc)) from None


class RemoteChat:
    """Talks to `emoreason serve` (or any OpenAI-compatible server) with the openai client."""

    def __init__(self, url: str, api_key: str | None, sampling: Sampling):
        import openai

        base_url = url.rstrip("/")
        base_url = base_url if base_url.endswith("/v1") else f"{base_url}/v1"
        # The client insists on a key; a server started without --api-key ignores it.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=0)
        self.sampling = sampling
        self._openai = openai
        try:
            models = self.client.models.list().data
        except openai.APIError as exc:
            raise ChatError(f"cannot list the models at {base_url}: {exc}") from None
        if not models:
            raise ChatError(f"{base_url} serves no model")
        self.model = models[0].id

    def stream(self, turns: list[Turn]) -> Iterator[str]:
        try:
            chunks = self.client.chat.completions.create(
                model=self.model,
                messages=[_openai_message(t) for t in turns],
                max_tokens=self.sampling.max_tokens,
                temperature=self.sampling.temperature,
                top_p=self.sampling.top_p,
                seed=self.sampling.seed,
                stream=True,
            )
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except self._openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            raise ChatError(f"server answered {exc.status_code}: {body.get('message', exc.message)}") from None
        except self._openai.APIError as exc:
            raise ChatError(str(exc)) from None


def _openai_message(turn: Turn) -> dict:
    if not turn.media:
        return {"role": turn.role, "content": turn.text}
    parts: list[dict] = [{"type": "text", "text": turn.text}]
    for item in turn.media:
        field = f"{item.kind}_url"
        parts.append({"type": field, field: {"url": _data_url(item)}})
    return {"role": turn.role, "content": parts}


def _data_url(item: MediaInput) -> str:
    # The server checks the MIME type against the part's kind: an .mp4 sent as audio is audio/mp4.
    guessed = mimetypes.guess_type(item.path.name)[0] or "application/octet-stream"
    mime = f"{item.kind}/{guessed.partition('/')[2]}"
    return f"data:{mime};base64,{base64.b64encode(item.path.read_bytes()).decode()}"


def run_chat(backend: LocalChat | RemoteChat, media_root: Path, stdin: TextIO, stdout: TextIO) -> None:
    turns: list[Turn] = []
    pending: list[MediaInput] = []

    def say(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    say(f"emoreason chat. {HELP}")
    while True:
        if stdin.isatty():
            stdout.write("you> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            return
        line = line.strip()
        if not line:
            continue
        command, _, argument = line.partition(" ")
        if command == "/quit":
            return
        if command == "/reset":
            turns.clear()
            pending.clear()
            say("(conversation reset)")
        elif command in MEDIA_COMMANDS:
            kind, name = MEDIA_COMMANDS[command], argument.strip()
            try:  # the server's rule: relative to the media root, never leaving it
                path = confined_path(name, media_root, root_name="media root") if name else None
            except MediaError as exc:
                say(f"error: {exc}")
                continue
            if path is None or not path.is_file():
                say(f"error: no such file: {name or '(none given)'}")
            elif any(m.kind == kind for m in pending + [m for t in turns for m in t.media]):
                # A conversation is one sample to the model: at most one file of each kind.
                say(f"error: this conversation already has a {kind}; /reset to start over with another")
            else:
                pending.append(MediaInput(kind=kind, path=path))
                say(f"(attached {kind} {path}; sent with your next message)")
        elif command.startswith("/"):
            say(HELP)
        else:
            turns.append(Turn("user", line, pending))
            pending = []
            reply = _stream_reply(backend, turns, stdout)
            if reply is None:
                say("(that message was dropped; its media can be attached again)")
                turns.pop()
            else:
                turns.append(Turn("assistant", reply))


def _stream_reply(backend: LocalChat | RemoteChat, turns: list[Turn], stdout: TextIO) -> str | None:
    """Print the reply as it streams; None when the turn failed (after printing why)."""
    pieces: list[str] = []
    try:
        for delta in backend.stream(turns):
            pieces.append(delta)
            stdout.write(delta)
            stdout.flush()
    except ChatError as exc:
        stdout.write(("\n" if pieces else "") + f"error: {exc}\n")
        return None
    stdout.write("\n")
    return "".join(pieces)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emoreason chat", description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    add_model_or_server_arguments(parser)
    parser.add_argument("--media-root", default=".", help="folder that /video, /audio, /image paths are relative to (default .)")
    parser.add_argument("--max-tokens", type=int, default=256, help="longest answer, in tokens")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 decodes greedily")
    add_trust_arguments(parser)
    return parser


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    engine: InferenceEngine | None = None,
) -> int:
    """`engine` runs an already-built engine in-process instead of loading --model (tests, notebooks)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    sampling = Sampling(max_tokens=args.max_tokens, temperature=args.temperature)
    try:
        if args.url:
            backend: LocalChat | RemoteChat = RemoteChat(args.url, args.api_key, sampling)
        elif engine is not None or args.model:
            if engine is None:
                try:
                    engine = engine_from_args(args)
                except (BackendError, ConfigError) as exc:  # ConfigError: a refused or invalid model directory
                    raise ChatError(str(exc)) from None
            backend = LocalChat(engine, sampling)
        else:
            parser.error("one of --model or --url is required")
    except ChatError as exc:
        print(f"emoreason chat: error: {exc}", file=sys.stderr)
        return 2
    run_chat(backend, Path(args.media_root), stdin, stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
