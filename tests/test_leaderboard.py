"""The leaderboard page: a title, links to each run's plots (which carry the run's name), and header-click sorting
checked in a real browser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emoreason.eval.eval_cli import main as eval_main
from emoreason.schema import Sample, write_samples
from test_eval_cli import REFERENCES

# run name -> answers to s1..s4 (references happy, sad, angry, happy)
RUNS = {
    "run-good": ["happy", "sad", "angry", "happy"],
    "run-bad": ["sad", "happy", "happy", "sad"],
    "run-mid": ["happy", "sad", "happy", "sad"],
}


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("leaderboard")
    refs = work / "refs.jsonl"
    write_samples(refs, [Sample.model_validate(r) for r in REFERENCES])
    out = work / "board"
    for name, answers in RUNS.items():
        preds = work / f"{name}.jsonl"
        preds.write_text("".join(json.dumps({"id": f"s{i + 1}", "text": a}) + "\n" for i, a in enumerate(answers)))
        assert eval_main(["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out)]) == 0
    return out


def test_page_has_a_title_and_links_to_each_runs_plots(board):
    page = (board / "leaderboard.html").read_text()
    assert "<title>emoreason leaderboard: board</title>" in page and "<h1>emoreason leaderboard: board</h1>" in page
    assert "<script" in page and "src=" not in page, "the sorting script must be inline (no CDN)"
    for name in RUNS:
        for kind in ("confusion", "recall"):
            href = f"{name}.{kind}.png"
            assert f'<a href="{href}">{kind}</a>' in page
            assert (board / href).is_file()


def test_plots_carry_the_run_name(board):
    from PIL import Image

    for name in RUNS:
        with Image.open(board / f"{name}.confusion.png") as image:
            assert image.info["Title"] == f"{name}: confusion"
        with Image.open(board / f"{name}.recall.png") as image:
            assert image.info["Title"] == f"{name}: per-class recall"


def first_column(page) -> list[str]:
    return page.eval_on_selector_all("table.leaderboard tbody tr", "rows => rows.map(r => r.cells[0].textContent)")


def test_header_click_sorts_in_the_browser(board):
    from web_browser import chromium

    with chromium() as context:
        page = context.new_page()
        page.goto((board / "leaderboard.html").as_uri())
        assert first_column(page) == ["run-good", "run-mid", "run-bad"]  # best weighted F1 first
        page.click("th:text-is('run')")
        assert first_column(page) == ["run-bad", "run-good", "run-mid"]  # text: A to Z first
        page.click("th:text-is('run')")
        assert first_column(page) == ["run-mid", "run-good", "run-bad"]
        page.click("th:text-is('acc / WAR')")
        accuracy = page.eval_on_selector_all("table.leaderboard tbody tr", "rows => rows.map(r => r.cells[3].textContent)")
        assert accuracy == sorted(accuracy, reverse=True) and first_column(page)[0] == "run-good"  # numbers: best first
        page.click("th:text-is('acc / WAR')")
        assert first_column(page)[0] == "run-bad"
        assert page.get_attribute("th:text-is('acc / WAR')", "aria-sort") == "ascending"
