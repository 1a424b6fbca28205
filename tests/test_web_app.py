"""`emoreason web` in headless Chromium on the demo's tiny model, on 127.0.0.1.

- chat: a bad upload shows its error and the next good upload works; the streamed answer equals the
  engine's answer to the same request; the "what the model saw" tab shows that clip's face crops,
  pixel for pixel the crops the face encoder gets;
- results: the demo's leaderboard folder opens, and the sample browser filters to the misclassified clips;
- the app against `emoreason serve` with an API key (the app in its own process, as a user starts it),
  and a wrong key shown as a message while the app keeps working;
- a screenshot of each view, checked to be non-blank.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emoreason.serving.engine import GenerationRequest, MediaInput
from serving_helpers import running_server
from serving_models import clips_dir, exported_model_dir
from web_browser import chromium, screenshot

pytestmark = pytest.mark.slow

QUESTION = "Which emotion does the person express? Answer with one label from: angry, happy, sad, surprised."
MAX_TOKENS = 16
HELDOUT_SAMPLES = 12  # enough for misclassified and unmatched answers from the briefly trained model
API_KEY = "web-test-key"


@dataclasses.dataclass
class Demo:
    export: Path
    data_root: Path
    heldout: Path
    predictions: Path
    leaderboard: Path
    labels: list[str]

    def clip(self, name: str = "clips/syn_00012.mp4") -> Path:
        return self.data_root / name


@pytest.fixture(scope="module")
def demo(tiny_data, tmp_path_factory) -> Demo:
    """What `make demo` leaves: an export, the data root, predictions on held-out clips, their leaderboard."""
    from emoreason.eval.eval_cli import main as eval_main
    from emoreason.serving.infer import main as infer_main

    export = exported_model_dir(tiny_data, tmp_path_factory)
    work = tmp_path_factory.mktemp("web_demo")
    heldout = work / "heldout.jsonl"
    heldout.write_text("".join(tiny_data.heldout.read_text().splitlines(keepends=True)[:HELDOUT_SAMPLES]))
    data_root = clips_dir(tiny_data).parent
    predictions, board = work / "predictions.jsonl", work / "leaderboard"
    assert infer_main(["--model", str(export), "--input", str(heldout), "--out", str(predictions),
                       "--data-root", str(data_root), "--max-tokens", str(MAX_TOKENS)]) == 0
    assert eval_main(["--predictions", str(predictions), "--references", str(heldout), "--out-dir", str(board),
                      "--name", "tiny-demo", "--model", str(export), "--labels", ",".join(tiny_data.labels)]) == 0
    return Demo(export, data_root, heldout, predictions, board, list(tiny_data.labels))


@pytest.fixture(scope="module")
def engine(demo):
    from emoreason.serving.hf_engine import HFEngine

    return HFEngine(demo.export)


@pytest.fixture(scope="module")
def browser():
    with chromium() as context:
        yield context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(demo, engine):
    from emoreason.web.web_cli import start

    running = start([
        "--port", str(free_port()), "--media-root", str(demo.data_root), "--results", str(demo.leaderboard),
        "--max-tokens", str(MAX_TOKENS), "--max-upload-mb", "1",
    ], engine=engine)
    assert running.url.startswith("http://127.0.0.1:")
    yield running.url
    running.close()


def engine_answer(engine, clip: Path) -> str:
    request = GenerationRequest([{"role": "user", "content": QUESTION}], [MediaInput("video", clip)], max_tokens=MAX_TOKENS)
    return engine.generate([request])[0].text


def wait_for_text(page, selector: str, text: str, timeout: float = 60_000) -> str:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)", arg=[selector, text], timeout=timeout)
    return page.inner_text(selector)


def upload(page, path: Path) -> None:
    page.locator("#upload input[type=file]").set_input_files(str(path))


def ask(page, question: str) -> str:
    """Send `question`; the raw answer once the app says it is complete. Records what the chat showed meanwhile."""
    page.evaluate("""() => {
        window.__shown = [];
        const bot = document.querySelector('#chatbot');
        new MutationObserver(() => window.__shown.push(bot.innerText)).observe(bot, {subtree: true, childList: true, characterData: true});
    }""")
    page.fill("#message textarea", question)
    page.click("#send")
    wait_for_text(page, "#chat-status", "answered by")
    return page.input_value("#raw-answer textarea")


def test_chat_bad_upload_then_streamed_answer_and_what_the_model_saw(app_url, browser, demo, engine, tmp_path):
    page = browser.new_page()
    page.goto(app_url)
    page.wait_for_selector("#message textarea")

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    upload(page, broken)
    assert "broken.mp4: unreadable or corrupt file" in wait_for_text(page, "#chat-status", "error")
    oversize = tmp_path / "oversize.mp4"
    oversize.write_bytes(demo.clip().read_bytes() * (2**20 // demo.clip().stat().st_size + 1))
    upload(page, oversize)
    page.wait_for_selector("text=exceed the maximum allowed size")  # Gradio's own limit, set from --max-upload-mb
    page.locator(".toast-close").first.click()  # read, dismissed: it would cover the screenshots
    page.locator("#pick input").fill("../outside.mp4")
    page.keyboard.press("Enter")  # takes the typed value and closes the options list over the button
    page.click("#attach-pick")
    assert "outside the media root" in wait_for_text(page, "#chat-status", "error: ../outside.mp4")

    upload(page, demo.clip())
    wait_for_text(page, "#chat-status", "attached video")
    assert "syn_00012.mp4" in page.inner_text("#attached")
    answer = ask(page, QUESTION)
    expected = engine_answer(engine, demo.clip())
    assert answer == expected, "the streamed answer is the engine's answer to the same request"
    assert page.evaluate("window.__shown.length") > 1, "the chat updated while the answer streamed"
    screenshot(page, tmp_path / "web_chat.png")

    page.get_by_role("tab", name="What the model saw").click()
    page.wait_for_selector("#saw-crops img")
    crops = expected_face_crops(demo)
    assert page.locator("#saw-crops img").count() == len(crops) > 0
    assert page.locator("#saw-frames img").count() >= len(crops)
    shown = page.request.get(page.locator("#saw-crops img").first.get_attribute("src")).body()
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(io.BytesIO(shown)).convert("RGB")), crops[0]), "the crop shown is the crop encoded"
    table = page.inner_text("#saw-modalities")
    assert all(m in table for m in ("audio", "face", "video", "frame")) and "present" in table
    screenshot(page, tmp_path / "web_saw.png")

    page.get_by_role("tab", name="Chat").click()
    page.click("#reset")
    wait_for_text(page, "#chat-status", "conversation reset")
    assert page.inner_text("#attached") == "no media attached"
    page.close()


def expected_face_crops(demo) -> np.ndarray:
    """The crops the engine's face encoder gets for the clip, computed with the project's functions directly."""
    from emoreason.media.faces import build_face_detector, crop_main_faces
    from emoreason.media.video import decode_frames
    from emoreason.web.inspection import ModelMedia

    media = ModelMedia.of_model_dir(demo.export).media
    frames = decode_frames(demo.clip(), media.video).frames
    detector = build_face_detector(media.faces.detector, **media.faces.detector_args)
    return crop_main_faces(frames, detector, media.faces.margin, media.faces.size)[0]


def test_streamed_reply_grows_to_the_engines_answer(demo, engine):
    """The handler behind the Send button, without the browser: partial replies, each extending the last."""
    from emoreason.web.chat_tab import ChatHandlers
    from emoreason.web.conversation import Conversation, LocalBackend
    from emoreason.web.settings import WebSettings
    from emoreason.web.uploads import UploadLimits, check_media

    handlers = ChatHandlers(LocalBackend(engine), WebSettings(limits=UploadLimits(2**20)))
    conversation = Conversation()
    conversation.attach(check_media(demo.clip(), UploadLimits(2**20)))
    raw = [out[3] for out in handlers.send(QUESTION, [], conversation, MAX_TOKENS, 0.0, 1.0, None) if isinstance(out[3], str)]
    partials = [r for r in raw if r]
    assert all(b.startswith(a) for a, b in zip(partials, partials[1:]))
    assert partials[-1] == engine_answer(engine, demo.clip())
    assert len(conversation.turns) == 2


def misclassified_ids(demo) -> list[str]:
    import json

    from emoreason.labels import extract_label

    references = {r["id"]: r["targets"]["emotion"] for r in map(json.loads, demo.heldout.read_text().splitlines())}
    predictions = {p["id"]: p for p in map(json.loads, demo.predictions.read_text().splitlines())}
    return [i for i in references if extract_label(predictions[i].get("text") or "", demo.labels) != references[i]]


def test_results_view_filters_to_the_misclassified_clips(app_url, browser, demo, tmp_path):
    page = browser.new_page()
    page.goto(app_url)
    page.get_by_role("tab", name="Results").click()
    wait_for_text(page, "#results-status", "opened")  # --results opens at start
    assert "tiny-demo" in page.inner_text("#leaderboard")
    page.wait_for_selector("#confusion img")
    page.wait_for_selector("#recall img")
    wait_for_text(page, "#samples-count", f"{HELDOUT_SAMPLES} of {HELDOUT_SAMPLES} samples")

    wrong = misclassified_ids(demo)
    assert 0 < len(wrong) < HELDOUT_SAMPLES, "the briefly trained model gets some clips right and some wrong"
    page.locator("#filter-wrong input[type=checkbox]").check()
    wait_for_text(page, "#samples-count", f"{len(wrong)} of {HELDOUT_SAMPLES} samples")
    ids = "#samples [role=gridcell][data-col='0']"  # Gradio's table: a grid of cells, data-row/data-col
    page.wait_for_function("([s, n]) => document.querySelectorAll(s).length === n", arg=[ids, len(wrong)])
    assert [cell.strip() for cell in page.locator(ids).all_inner_texts()] == wrong
    assert "correct" not in page.locator("#samples [role=gridcell][data-col='3']").all_inner_texts()

    page.locator("#samples [data-testid='cell-0-0']").click()
    assert wrong[0] in wait_for_text(page, "#sample-text", wrong[0])
    page.wait_for_selector("#sample-video video[src]")
    screenshot(page, tmp_path / "web_results.png")

    page.fill("#results-path input, #results-path textarea", str(demo.predictions))  # a predictions file, not results
    page.click("#results-open")
    assert "not JSON" in wait_for_text(page, "#results-status", "error")
    page.fill("#results-path input, #results-path textarea", "/etc")
    page.click("#results-open")
    assert "outside the results root" in wait_for_text(page, "#results-status", "error: /etc")
    page.fill("#results-path input, #results-path textarea", str(demo.leaderboard))
    page.click("#results-open")
    wait_for_text(page, "#results-status", "opened")
    page.close()


@contextlib.contextmanager
def web_process(argv: list[str]):
    """`emoreason web ARGV` in its own process, as a user starts it; yields its URL once it serves."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen([sys.executable, "-m", "emoreason.cli", "web", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline, lines = time.monotonic() + 180, []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise AssertionError("emoreason web exited:\n" + "".join(lines))
            lines.append(line)
            if match := re.match(r"emoreason web: (http://127\.0\.0\.1:\d+/?)", line):
                yield match.group(1)
                break
        else:
            raise AssertionError("emoreason web did not start:\n" + "".join(lines))
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_against_emoreason_serve_with_an_api_key(demo, engine, browser, tmp_path):
    from emoreason.serving.server import ServerSettings, create_app
    from emoreason.web.web_cli import start

    with running_server(create_app(engine, ServerSettings(api_key=API_KEY))) as server:
        argv = ["--url", server, "--api-key", API_KEY, "--inspect-model", str(demo.export), "--port", str(free_port())]
        with web_process(argv) as url:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#message textarea")
            upload(page, demo.clip())
            wait_for_text(page, "#chat-status", "attached video")
            assert ask(page, QUESTION) == engine_answer(engine, demo.clip())
            assert server.rstrip("/") in page.inner_text("#chat-status")
            page.get_by_role("tab", name="What the model saw").click()
            page.wait_for_selector("#saw-crops img")
            page.close()

        refused = start(["--url", server, "--api-key", "not-the-key", "--port", str(free_port())])
        try:
            page = browser.new_page()
            page.goto(refused.url)
            page.wait_for_selector("#message textarea")
            page.fill("#message textarea", "hello")
            page.click("#send")
            assert "401" in wait_for_text(page, "#chat-status", "error")
            assert page.input_value("#message textarea") == "hello", "the refused message is kept to send again"
            page.click("#reset")  # the app still answers events after a refusal
            wait_for_text(page, "#chat-status", "conversation reset")
            page.fill("#message textarea", "hello again")
            page.click("#send")
            assert "401" in wait_for_text(page, "#chat-status", "error")
            page.close()
        finally:
            refused.close()
