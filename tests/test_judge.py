"""The LLM judge against a fake OpenAI-compatible judge on 127.0.0.1 over real HTTP: score parsing,
retries, timeouts, garbled replies, the persistent cache, concurrency and prompt validation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from fake_judge import FakeJudge
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from serving_helpers import running_server

from emoreason.eval.judge_cache import JudgeCache, cache_key
from emoreason.eval.judge_client import LLMJudge, parse_score, summarise
from emoreason.eval.judge_prompts import PromptSet, load_prompts, parse_prompts

pytestmark = pytest.mark.timeout(60)

ITEM = {"reference": "She smiles and her voice is bright.", "prediction": "A wide smile and a cheerful tone."}


def judge_for(url: str, tmp_path, **kwargs) -> LLMJudge:
    options = {"backoff_base": 0.01, "timeout": 5.0} | kwargs
    return LLMJudge(f"{url}/v1", options.pop("model", "judge-a"), tmp_path / "cache.sqlite", **options)


def items(n: int) -> list[dict[str, str]]:
    return [{**ITEM, "prediction": f"prediction {i}"} for i in range(n)]


@pytest.mark.parametrize(
    "text,score",
    [
        ("Score: 7", 7.0),
        ("score: 7/10", 7.0),
        ("**Score:** 8", 8.0),
        ("**Score: 8**", 8.0),
        ("7.5", 7.5),
        ("I would rate it 6 out of 10.", 6.0),
        ("Score: 7 out of 10", 7.0),
        ("Final score = 9", 9.0),
        ("Overall, the score is 6.", 6.0),
        ("Score: 10/10", 10.0),
        ("On a scale of 1 to 10...\nThe clues match.\nScore: 9\nThanks!", 9.0),
        ("Score: 3 ... after review, Score: 4", 4.0),  # the final explicit score
        ("3/10 clues are named; overall 8/10", 8.0),
        ("A score of 10 would need the tone too.\nScore: 6", 6.0),
        ("Score: 11", None),
        ("Score: 0", None),
        ("Score: -3", None),  # not read as 3
        ("Score: 4/5", None),  # another scale
        ("Score: 7-8", None),  # a hedge, not a score
        ("Score: 1,000", None),
        ("Score: N/A", None),
        ("A score of 10 would need more.", None),
        ("looks good", None),
        ("Some 5 clues match", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_score(text, score):
    assert parse_score(text) == score


def test_known_scores_are_parsed_and_the_request_is_well_formed(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "must-not-leak")
    fake = FakeJudge(lambda n, body: "Good overlap.\nScore: 9" if "first" in body["messages"][1]["content"] else "Score: 4")
    with running_server(fake.app()) as url:
        with judge_for(url, tmp_path, api_key="secret") as judge:
            scores = judge.score("clue_overlap", [{**ITEM, "prediction": "first"}, {**ITEM, "prediction": "second"}])
        with judge_for(url, tmp_path / "nokey") as judge:
            judge.score("label_overlap", [{"reference_labels": "happy", "prediction": "third"}])
    assert [s.score for s in scores] == [9.0, 4.0] and scores[0].reply == "Good overlap.\nScore: 9"
    assert not any(s.cached or s.error for s in scores)
    assert fake.auth[:2] == ["Bearer secret"] * 2
    assert fake.auth[2] != "Bearer must-not-leak"  # no key of ours: the environment's is not sent to the judge
    for body in fake.bodies:
        assert body["temperature"] == 0 and body["model"] == "judge-a"
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert any("first" in b["messages"][1]["content"] and ITEM["reference"] in b["messages"][1]["content"] for b in fake.bodies)
    assert "happy" in fake.bodies[2]["messages"][1]["content"]
    assert summarise(scores) == {"mean": 6.5, "scored": 2, "unscored": 0, "failed": 0, "unparsable": 0}


def test_score_one_and_stats(tmp_path):
    fake = FakeJudge(lambda n, body: "Score: 5")
    with running_server(fake.app()) as url, judge_for(url, tmp_path) as judge:
        first = judge.score_one("clue_overlap", ITEM)
        again = judge.score_one("clue_overlap", ITEM)
    assert (first.score, first.cached, again.score, again.cached) == (5.0, False, 5.0, True)
    assert judge.stats.to_json() == {"calls": 1, "cache_hits": 1, "retries": 0, "failures": 0, "unparsable": 0}


def test_retries_5xx_then_succeeds(tmp_path):
    fake = FakeJudge(lambda n, body: (500, 503)[n] if n < 2 else "Score: 6")
    with running_server(fake.app()) as url, judge_for(url, tmp_path) as judge:
        (score,) = judge.score("clue_overlap", [ITEM])
    assert score.score == 6.0 and fake.calls == 3 and judge.stats.retries == 2 and judge.stats.failures == 0


def test_429_is_retried_but_other_4xx_are_not(tmp_path):
    rate_limited = FakeJudge(lambda n, body: 429 if n == 0 else "Score: 2")
    refused = FakeJudge(lambda n, body: 400)
    with running_server(rate_limited.app()) as url, judge_for(url, tmp_path) as judge:
        (score,) = judge.score("clue_overlap", [ITEM])
    assert score.score == 2.0 and rate_limited.calls == 2
    with running_server(refused.app()) as url, judge_for(url, tmp_path / "refused") as judge:
        (score,) = judge.score("clue_overlap", [ITEM])
    assert score.score is None and "BadRequestError" in score.error and refused.calls == 1 and judge.stats.failures == 1


def test_timeout_then_success(tmp_path):
    def reply(n, body):
        if n == 0:
            time.sleep(1.0)  # blocks the fake's event loop past the client's timeout
        return "Score: 5"

    fake = FakeJudge(reply)
    with running_server(fake.app()) as url, judge_for(url, tmp_path, timeout=0.4) as judge:
        (score,) = judge.score("clue_overlap", [ITEM])
    assert score.score == 5.0 and judge.stats.retries >= 1 and fake.calls >= 2


def test_persistent_failure_is_unscored_and_not_cached(tmp_path):
    fake = FakeJudge(lambda n, body: 500)
    with running_server(fake.app()) as url:
        with judge_for(url, tmp_path, max_retries=2) as judge:
            (score,) = judge.score("clue_overlap", [ITEM])
        assert score.score is None and "InternalServerError" in score.error and fake.calls == 3
        assert judge.stats.failures == 1 and judge.stats.retries == 2
        fake.reply = lambda n, body: "Score: 8"
        with judge_for(url, tmp_path) as rerun:
            (again,) = rerun.score("clue_overlap", [ITEM])
    assert again.score == 8.0 and not again.cached and fake.calls == 4


def test_unreachable_endpoint_is_a_failure_not_a_crash(tmp_path):
    with running_server(FakeJudge().app()) as url:
        pass  # the server is gone: nothing listens on its port any more
    with judge_for(url, tmp_path, max_retries=1) as judge:
        (score,) = judge.score("clue_overlap", [ITEM])
    assert score.score is None and "Connection" in score.error and judge.stats.calls == 2


def test_garbled_reply_is_asked_again_then_left_unscored(tmp_path):
    fake = FakeJudge(lambda n, body: "I cannot decide.")
    with running_server(fake.app()) as url:
        with judge_for(url, tmp_path) as judge:
            (score,) = judge.score("clue_overlap", [ITEM])
        assert (score.score, score.error, score.reply, fake.calls) == (None, "unparsable reply", "I cannot decide.", 2)
        assert judge.stats.unparsable == 1
        fake.reply = lambda n, body: "Score: 3"
        with judge_for(url, tmp_path) as rerun:
            (again,) = rerun.score("clue_overlap", [ITEM])
    assert again.score == 3.0 and not again.cached  # the garbled reply was never cached


def test_a_garbled_reply_then_a_good_one_is_scored(tmp_path):
    fake = FakeJudge(lambda n, body: "Hmm." if n == 0 else "Score: 7")
    with running_server(fake.app()) as url, judge_for(url, tmp_path) as judge:
        (score,) = judge.score("clue_overlap", [ITEM])
    assert score.score == 7.0 and fake.calls == 2


def test_a_completion_without_choices_counts_as_garbled(tmp_path):
    app = FastAPI()
    calls = []

    @app.post("/v1/chat/completions")
    async def empty(body: dict):
        calls.append(body)
        return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"], "choices": []})

    with running_server(app) as url, judge_for(url, tmp_path) as judge:
        (score,) = judge.score("clue_overlap", [ITEM])
    assert (score.score, score.error, len(calls)) == (None, "unparsable reply", 2)


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": 7}}]},
        {"id": "x", "choices": "not a list"},
        {"unexpected": True},
    ],
    ids=["content-number", "choices-string", "no-completion"],
)
def test_a_garbled_body_is_one_unparsable_item_not_a_crash(tmp_path, body):
    fake = FakeJudge(lambda n, b: body if "prediction 1" in b["messages"][1]["content"] else "Score: 6")
    with running_server(fake.app()) as url, judge_for(url, tmp_path) as judge:
        scores = judge.score("clue_overlap", items(3))
    assert [s.score for s in scores] == [6.0, None, 6.0] and scores[1].fault == "unparsable"
    assert summarise(scores) == {"mean": 6.0, "scored": 2, "unscored": 1, "failed": 0, "unparsable": 1}


def test_ask_parses_text_replies_and_caches_only_accepted_ones(tmp_path):
    prompts = parse_prompts({"version": "t-v1", "templates": {"echo": {"placeholders": ["x"], "system": "Echo.", "user": "{x}"}}}, "test")
    fake = FakeJudge(lambda n, body: "garbage" if body["messages"][1]["content"] == "b" else f"[{body['messages'][1]['content']}]")
    parse = lambda reply: reply if reply.startswith("[") else None  # noqa: E731
    with running_server(fake.app()) as url:
        with judge_for(url, tmp_path, prompts=prompts) as judge:
            replies = judge.ask("echo", [{"x": "a"}, {"x": "b"}, {"x": "a"}], parse)
        assert [r.value for r in replies] == ["[a]", None, "[a]"] and replies[1].error == "unparsable reply"
        assert fake.calls == 3  # "a" once (deduplicated), "b" twice
        with judge_for(url, tmp_path, prompts=prompts) as rerun:
            again = rerun.ask("echo", [{"x": "a"}, {"x": "b"}], parse)
        assert again[0].cached and not again[1].cached and fake.calls == 5


def test_cache_makes_a_rerun_free_and_keys_on_model_and_prompt_version(tmp_path):
    fake = FakeJudge(lambda n, body: f"Score: {1 + len(body['messages'][1]['content']) % 10}")
    work = items(5)
    with running_server(fake.app()) as url:
        with judge_for(url, tmp_path) as judge:
            first = judge.score("clue_overlap", work)
        assert fake.calls == 5 and judge.cache.stats() == {"hits": 0, "misses": 5}
        with judge_for(url, tmp_path) as rerun:
            second = rerun.score("clue_overlap", work)
        assert fake.calls == 5 and all(s.cached for s in second) and rerun.stats.cache_hits == 5 and rerun.stats.calls == 0
        assert [(s.score, s.reply) for s in second] == [(s.score, s.reply) for s in first]
        with judge_for(url, tmp_path, model="judge-b") as other_model:
            other_model.score("clue_overlap", work[:1])
        assert fake.calls == 6
        shipped = load_prompts()
        with judge_for(url, tmp_path, prompts=PromptSet("emer-judge-v2", shipped.templates)) as other_version:
            other_version.score("clue_overlap", work[:1])
        assert fake.calls == 7
        with judge_for(url, tmp_path) as judge:
            judge.score("label_overlap", [{"reference_labels": "happy", "prediction": "prediction 0"}])
        assert fake.calls == 8  # another template is another question


def test_identical_items_in_a_batch_are_asked_once(tmp_path):
    fake = FakeJudge(lambda n, body: "Score: 6")
    with running_server(fake.app()) as url, judge_for(url, tmp_path) as judge:
        scores = judge.score("clue_overlap", [ITEM, items(1)[0], ITEM])
    assert [s.score for s in scores] == [6.0] * 3 and fake.calls == 2


def test_bad_inputs_raise_before_any_call(tmp_path):
    fake = FakeJudge()
    with running_server(fake.app()) as url, judge_for(url, tmp_path) as judge:
        with pytest.raises(ValueError, match=r"inputs lack \['prediction'\]"):
            judge.score("clue_overlap", [ITEM, {"reference": "x"}])
        with pytest.raises(ValueError, match="no template 'nope'"):
            judge.score("nope", [ITEM])
    assert fake.calls == 0


def test_concurrency_overlaps_calls(tmp_path):
    walls = {}
    for concurrency in (1, 16):
        fake = FakeJudge(lambda n, body: "Score: 5", delay=0.05)
        with running_server(fake.app()) as url, judge_for(url, tmp_path / str(concurrency), concurrency=concurrency) as judge:
            start = time.perf_counter()
            scores = judge.score("clue_overlap", items(16))
            walls[concurrency] = time.perf_counter() - start
        assert [s.score for s in scores] == [5.0] * 16
    assert walls[16] < walls[1] / 2, walls


def test_cache_is_safe_with_threads_and_survives_a_killed_process(tmp_path):
    path = tmp_path / "cache.sqlite"
    with JudgeCache(path) as cache:

        def write(worker: int) -> None:
            for i in range(50):
                cache.put(f"{worker}-{i}", 5.0, "Score: 5")
                assert cache.get(f"{worker}-{i}") == (5.0, "Score: 5")

        threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(cache) == 400 and cache.hits == 400

    # A writer killed mid-run (no close, no atexit) keeps every put that returned.
    script = textwrap.dedent(f"""
        import os
        from emoreason.eval.judge_cache import JudgeCache
        cache = JudgeCache({str(path)!r})
        for i in range(20):
            cache.put(f"killed-{{i}}", 7.0, "Score: 7")
        os.kill(os.getpid(), 9)
    """)
    subprocess.run([sys.executable, "-c", script], check=False, timeout=30)
    with JudgeCache(path) as cache:
        assert len(cache) == 420 and cache.get("killed-19") == (7.0, "Score: 7")


def test_cache_key_covers_model_version_template_and_messages():
    messages = [{"role": "user", "content": "x"}]
    base = cache_key("m", "v1", "clue_overlap", messages)
    assert base == cache_key("m", "v1", "clue_overlap", [dict(m) for m in messages]) and len(base) == 64
    assert len({base, cache_key("m2", "v1", "clue_overlap", messages), cache_key("m", "v2", "clue_overlap", messages),
                cache_key("m", "v1", "label_overlap", messages), cache_key("m", "v1", "clue_overlap", [{"role": "user", "content": "y"}])}) == 5


def test_a_file_that_is_not_a_cache_is_refused_by_name(tmp_path):
    junk = tmp_path / "cache.sqlite"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(ValueError, match="cache.sqlite: not a usable SQLite database"):
        JudgeCache(junk)


def test_shipped_prompts_load_and_render():
    prompts = load_prompts()
    assert prompts.version == "emer-judge-v1" and {"clue_overlap", "label_overlap", "cot_rubric"} <= set(prompts.templates)
    system, user = prompts.render("label_overlap", {"reference_labels": "happy, excited", "prediction": "She {beams}."})
    assert system["role"] == "system" and "happy, excited" in user["content"] and "She {beams}." in user["content"]
    assert "Score: N" in user["content"]  # the form parse_score reads
    with pytest.raises(ValueError, match="inputs lack"):
        prompts.template("clue_overlap").messages({"reference": "x"})
    with pytest.raises(ValueError, match="no template 'nope'"):
        prompts.template("nope")
    with pytest.raises(ValueError, match=r"no shipped judge prompt set 'emer_judge_v9'.*emer_judge_v1"):
        load_prompts("emer_judge_v9")


def test_prompt_files_are_validated(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("version: mine-v1\ntemplates:\n  t:\n    placeholders: [a]\n    system: Judge {a}.\n    user: 'Rate: {a}'\n")
    mine = load_prompts(good)
    assert mine.version == "mine-v1" and mine.render("t", {"a": "x"})[0]["content"] == "Judge x."

    def refused(data, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            parse_prompts(data, "f.yaml")

    template = {"system": "s", "user": "{a}", "placeholders": ["a"]}
    refused({"templates": {"t": template}}, r"f.yaml: version")
    refused({"version": "v"}, r"f.yaml: templates")
    refused({"version": "v", "templates": {"t": {**template, "user": ""}}}, r"f.yaml: templates.t.user: expected a non-empty string")
    refused({"version": "v", "templates": {"t": {"user": "{a}", "placeholders": ["a"]}}}, r"templates.t.system")
    refused({"version": "v", "templates": {"t": {"system": "s", "user": "{a}"}}}, r"templates.t.placeholders: expected a list")
    refused({"version": "v", "templates": {"t": {**template, "user": "{a} {b}"}}}, r"templates.t.user: uses placeholders \['b'\]")
    refused({"version": "v", "templates": {"t": {**template, "placeholders": ["a", "c"]}}}, r"templates.t.placeholders: lists \['c'\]")
    refused({"version": "v", "templates": {"t": {**template, "user": "{a} {}"}}}, r"templates.t.user: placeholders must be plain names")
    refused({"version": "v", "templates": {"t": {**template, "user": "{a} {"}}}, r"templates.t.user: .*literal brace")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [unclosed\n")
    with pytest.raises(ValueError, match="broken.yaml: not valid YAML"):
        load_prompts(broken)
