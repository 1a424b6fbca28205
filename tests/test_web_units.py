"""The web app's pieces without a browser or a model: upload checks, media-root confinement, the
conversation over chat's clients, results parsing and filtering, and the pictures it draws."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from emoreason.media.faces import Box
from emoreason.serving.chat import ChatError, Sampling
from emoreason.web.conversation import Conversation, LocalBackend, RemoteBackend, stream_reply
from emoreason.web.drawing import draw_boxes, waveform_image
from emoreason.web.results import UNMATCHED, ResultsError, filter_rows, open_board, sample_rows
from emoreason.web.uploads import UploadError, UploadLimits, check_media, list_media_root, pick_from_root
from serving_helpers import FakeEngine

LIMITS = UploadLimits(max_bytes=10_000_000, max_seconds=600)


@pytest.mark.parametrize(("name", "kind"), [("h264_aac.mp4", "video"), ("stereo_44k.wav", "audio"), ("still.png", "image"), ("audio_only.mp4", "audio")])
def test_media_kind_is_what_the_file_holds(media_dir: Path, name: str, kind: str):
    assert check_media(media_dir / name, LIMITS).kind == kind


@pytest.mark.parametrize(("name", "words"), [
    ("not_media.mp4", "not a media file"),
    ("truncated.mp4", "unreadable or corrupt"),
    ("empty.mp4", "zero-length"),
    ("broken.png", "broken.png"),
    ("bomb.png", "larger than the configured pixel limit"),
])
def test_bad_uploads_name_the_file_and_the_problem(media_dir: Path, name: str, words: str):
    with pytest.raises(UploadError, match=words) as caught:
        check_media(media_dir / name, LIMITS)
    assert str(caught.value).startswith(f"{name}: ")
    assert str(media_dir) not in str(caught.value), "the message names the user's file, not where it was stored"


def test_oversize_and_overlong_uploads(media_dir: Path):
    with pytest.raises(UploadError, match="MiB is over the upload limit"):
        check_media(media_dir / "h264_aac.mp4", UploadLimits(max_bytes=1000))
    with pytest.raises(UploadError, match="longer than the configured limit"):
        check_media(media_dir / "h264_aac.mp4", UploadLimits(max_bytes=10_000_000, max_seconds=0.5))


def test_media_root_picks_are_confined(media_dir: Path, tmp_path: Path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "clip.mp4").write_bytes((media_dir / "h264_aac.mp4").read_bytes())
    os.symlink(media_dir / "h264_aac.mp4", root / "leaves.mp4")
    assert pick_from_root("sub/clip.mp4", root, LIMITS).path == (root / "sub" / "clip.mp4").resolve()
    for name, words in [("../x.mp4", "outside the media root"), ("/etc/passwd", "outside the media root"),
                        ("leaves.mp4", "outside the media root"), ("sub/none.mp4", "file not found")]:
        with pytest.raises(UploadError, match=words):
            pick_from_root(name, root, LIMITS)
    with pytest.raises(UploadError, match="no media root"):
        pick_from_root("sub/clip.mp4", None, LIMITS)
    assert list_media_root(root) == ["leaves.mp4", "sub/clip.mp4"]


def test_conversation_streams_and_keeps_turns_only_when_answered(media_dir: Path):
    engine = FakeEngine()
    backend = LocalBackend(engine)
    conversation = Conversation()
    conversation.attach(check_media(media_dir / "h264_aac.mp4", LIMITS))
    with pytest.raises(UploadError, match="already has a video"):
        conversation.attach(check_media(media_dir / "mpeg4_aac.mp4", LIMITS))
    partials = list(stream_reply(backend, conversation, "which emotion?", Sampling(16, 0.0)))
    assert len(partials) > 1 and all(b.startswith(a) for a, b in zip(partials, partials[1:]))
    assert partials[-1] == "happy media=video turns=1 last=which emotion?"
    assert [t.role for t in conversation.turns] == ["user", "assistant"] and not conversation.pending
    second = list(stream_reply(backend, conversation, "why?", Sampling(16, 0.0, top_p=0.5, seed=3)))[-1]
    assert second == "happy media=video turns=2 last=why?"
    assert (engine.requests[-1].top_p, engine.requests[-1].seed) == (0.5, 3)

    broken = Conversation()
    broken.attach(check_media(media_dir / "h264_aac.mp4", LIMITS))
    broken.pending[0].path = media_dir / "bad.mp4"  # the fake engine refuses a file of that name
    with pytest.raises(ChatError, match="fake decoder refuses"):
        list(stream_reply(backend, broken, "hi", Sampling(16, 0.0)))
    assert broken.turns == [] and len(broken.pending) == 1, "a failed turn leaves the conversation as it was"


def test_remote_backend_down_is_a_chat_error_naming_the_server():
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = RemoteBackend(f"http://127.0.0.1:{port}", "key")
    with pytest.raises(ChatError, match=f"127.0.0.1:{port}"):
        list(stream_reply(backend, Conversation(), "hi", Sampling(8, 0.0)))


def _write_results(folder: Path, references: list[dict], predictions: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    refs, preds = folder / "refs.jsonl", folder / "preds.jsonl"
    refs.write_text("".join(json.dumps(r) + "\n" for r in references))
    preds.write_text("".join(json.dumps(p) + "\n" for p in predictions))
    result = {
        "name": "run-a", "provenance": {"predictions": str(preds), "references": str(refs), "model": "m"},
        "counts": {"references": len(references)}, "classification": {"weighted_f1": 0.5, "war": 0.5},
        "label_extraction": {"labels": ["happy", "sad"], "unmatched": 1},
    }
    path = folder / "run-a.results.json"
    path.write_text(json.dumps(result))
    return path


def test_results_board_rows_and_filters(tmp_path: Path):
    references = [{"id": f"s{i}", "media": {"video": f"clips/s{i}.mp4"}, "targets": {"emotion": label}}
                  for i, label in enumerate(["happy", "sad", "happy", "sad"])]
    predictions = [{"id": "s0", "text": "happy"}, {"id": "s1", "text": "happy"}, {"id": "s2", "text": "no idea"},
                   {"id": "s3", "error": {"reason": "unreadable", "message": "clips/s3.mp4: unreadable"}}]
    path = _write_results(tmp_path / "board", references, predictions)
    board = open_board(tmp_path / "board")
    assert board.paths == [path] and board.rows[0][0] == "run-a"
    assert board.rows[0][board.headers.index("weighted F1")] == 0.5, "numbers stay numbers, so the table sorts numerically"
    rows, labels = sample_rows(board.results[0], path)
    assert labels == ["happy", "sad"]
    assert [r.outcome for r in rows] == ["correct", "wrong", "unmatched", "error"]
    assert [r.id for r in filter_rows(rows, misclassified=True)] == ["s1", "s2", "s3"]
    assert [r.id for r in filter_rows(rows, reference="sad", predicted="happy")] == ["s1"]
    assert [r.id for r in filter_rows(rows, predicted=UNMATCHED)] == ["s2", "s3"]
    assert [r.id for r in filter_rows(rows, unmatched=True, reference="happy")] == ["s2"]


def test_results_of_the_wrong_format_say_what_was_expected(tmp_path: Path):
    (tmp_path / "x.results.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not JSON"):
        open_board(tmp_path / "x.results.json")
    (tmp_path / "y.json").write_text(json.dumps({"accuracy": 1}))
    with pytest.raises(ResultsError, match="expected 'name' and 'provenance'"):
        open_board(tmp_path / "y.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match=r"no \*.results.json"):
        open_board(tmp_path / "empty")
    with pytest.raises(ResultsError, match="no such file"):
        open_board(tmp_path / "missing")
    path = _write_results(tmp_path / "gone", [{"id": "a", "targets": {"emotion": "happy"}}], [{"id": "a", "text": "happy"}])
    (tmp_path / "gone" / "refs.jsonl").unlink()
    with pytest.raises(ResultsError, match="references file"):
        sample_rows(open_board(path).results[0], path)


def test_drawing():
    frame = np.zeros((60, 80, 3), np.uint8)
    main, other = Box(10, 10, 20, 20, 1.0), Box(50, 30, 10, 10, 0.5)
    drawn = draw_boxes(frame, [main, other], main)
    assert (drawn[10, 15] == (0, 220, 0)).all() and (drawn[30, 55] == (255, 200, 0)).all()
    assert not frame.any(), "the decoded frame itself is left as the model saw it"
    wave = waveform_image(np.sin(np.linspace(0, 50, 16000)).astype(np.float32), width=100, height=40)
    assert wave.shape == (40, 100, 3) and (wave == (40, 90, 200)).all(axis=2).sum() > 100
    assert waveform_image(np.zeros(0, np.float32)).shape == (120, 720, 3)


def test_command_line_refusals_exit_2_with_a_message(tmp_path: Path, capsys):
    from emoreason.web.web_cli import build_parser, main

    assert main(["--media-root", str(tmp_path / "none"), "--port", "0"]) == 2
    assert "--media-root" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "no_model"), "--port", "0"]) == 2
    assert "emoreason web: error:" in capsys.readouterr().err
    defaults = build_parser().parse_args([])
    assert (defaults.host, defaults.share) == ("127.0.0.1", False), "local only, and no public link unless asked"
