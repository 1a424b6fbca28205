"""`emoreason chat` driven by scripted stdin: in-process on the fake engine, and against a live server."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from emoreason.serving.chat import main
from emoreason.serving.server import ServerSettings, create_app
from serving_helpers import FakeEngine, running_server

pytestmark = pytest.mark.timeout(60)


class RecordingOutput(io.StringIO):
    """stdout that remembers each write, to tell a streamed reply from one printed whole."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture(scope="module")
def clips(media_dir: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chat_clips")
    shutil.copy(media_dir / "h264_aac.mp4", root / "clip.mp4")
    shutil.copy(media_dir / "h264_aac.mp4", root / "bad.mp4")  # the fake engine refuses any bad.mp4
    shutil.copy(media_dir / "not_media.mp4", root / "junk.mp4")
    shutil.copy(media_dir / "stereo_44k.wav", root / "voice.wav")
    shutil.copy(media_dir / "still.png", root / "face.png")
    return root


def chat(argv: list[str], script: str, engine: FakeEngine | None = None) -> RecordingOutput:
    out = RecordingOutput()
    assert main(argv, stdin=io.StringIO(script), stdout=out, engine=engine) == 0
    return out


SCRIPT = """\
/video clip.mp4
/audio voice.wav
How does she feel?
And why?
/reset
Hello
/quit
never read
"""


def test_in_process_multi_turn_with_media(clips: Path):
    engine = FakeEngine()
    out = chat(["--media-root", str(clips), "--max-tokens", "32"], SCRIPT, engine)
    lines = out.getvalue().splitlines()
    assert "happy media=video,audio turns=1 last=How does she feel?" in lines
    assert "happy media=video,audio turns=2 last=And why?" in lines  # media stays in the conversation
    assert "happy media=none turns=1 last=Hello" in lines  # /reset dropped turns and media
    assert len(engine.requests) == 3  # nothing after /quit
    assert engine.requests[0].media[0].path == clips / "clip.mp4" and engine.requests[0].max_tokens == 32
    assert {"happy", " media=none", " turns=1", " last=Hello"} <= set(out.writes)  # printed delta by delta


def test_in_process_errors_keep_the_conversation(clips: Path):
    script = "/video missing.mp4\n/video bad.mp4\nfirst\n<video><video>\n/image face.png\n/image face.png\nsecond\n/dance\n"
    engine = FakeEngine()
    text = chat(["--media-root", str(clips)], script, engine).getvalue()
    assert "error: no such file: missing.mp4" in text
    assert "error: " in text and "bad.mp4: unreadable or corrupt file" in text
    assert "error: placeholder <video> appears twice" in text  # a request the engine refuses
    # The failed turn is dropped with its media; the next turn is the conversation's first.
    assert "happy media=image turns=1 last=second" in text
    assert "error: this conversation already has a image" in text
    assert "commands: /video PATH" in text.splitlines()[-1]  # an unknown command prints the help


def test_against_a_server(clips: Path):
    engine = FakeEngine()
    # No media root on the server: the chat sends files as data URLs, so it works across machines.
    with running_server(create_app(engine, ServerSettings(api_key="k"))) as url:
        out = chat(["--url", url, "--api-key", "k", "--media-root", str(clips)], SCRIPT.replace("/audio", "/image").replace("voice.wav", "face.png"))
        bad = chat(["--url", url, "--api-key", "k", "--media-root", str(clips)], "/video junk.mp4\nhi\nagain\n").getvalue()
    lines = out.getvalue().splitlines()
    assert "happy media=video,image turns=1 last=How does she feel?" in lines
    assert "happy media=video,image turns=2 last=And why?" in lines
    assert "happy media=none turns=1 last=Hello" in lines
    assert {" turns=1", " last=Hello"} <= set(out.writes)  # streamed from the server chunk by chunk
    assert engine.requests[0].media[0].path.suffix == ".mp4"
    assert "415" in bad and "data URL #1: not a media file" in bad
    assert "happy media=none turns=1 last=again" in bad


def test_bad_command_lines(capsys):
    with pytest.raises(SystemExit):
        main([], stdin=io.StringIO(""), stdout=io.StringIO())
    assert main(["--url", "http://127.0.0.1:9"], stdin=io.StringIO(""), stdout=io.StringIO()) == 2  # nothing listens
    assert "cannot list the models" in capsys.readouterr().err


def test_media_paths_stay_inside_the_media_root(clips: Path, tmp_path: Path):
    outside = tmp_path / "secret.mp4"
    shutil.copy(clips / "clip.mp4", outside)
    (clips / "escape.mp4").unlink(missing_ok=True)
    (clips / "escape.mp4").symlink_to(outside)
    script = f"/video ../{outside.name}\n/video {outside}\n/video escape.mp4\n/video clip.mp4\n/quit\n"
    out = chat(["--media-root", str(clips)], script, FakeEngine()).getvalue()
    assert out.count("outside") >= 3, out  # '..', an absolute path and a symlink out are refused
    assert "(attached video" in out and out.count("(attached video") == 1
