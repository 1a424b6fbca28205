"""The LLM judge against a fake OpenAI-compatible judge on 127.0.0.1: retries, timeouts, garbled replies, cache."""

import time

import pytest
from fake_judge import FakeJudge
from serving_helpers import running_server

from emoreason.eval.judge_client import LLMJudge, summarise
from emoreason.eval.judge_prompts import load_prompts, parse_prompts
from emoreason.eval.judge_scores import parse_score

ITEM = {"reference": "She smiles and her voice is bright.", "prediction": "A wide smile and a cheerful tone."}


def judge_for(url, tmp_path, **kwargs) -> LLMJudge:
    options = {"backoff_base": 0.01, "timeout": 5.0} | kwargs
    return LLMJudge(f"{url}/v1", "judge-a", tmp_path / "cache.sqlite", **options)


@pytest.mark.parametrize(
    "text,score",
    [
        ("Score: 7", 7.0), ("score: 7/10", 7.0), ("**Score:** 8", 8.0), ("7.5", 7.5), ("I would rate it 6 out of 10.", 6.0),
        ("On a scale of 1 to 10...\nThe clues match.\nScore: 9\nThanks!", 9.0), ("Score: 3 ... after review, Score: 4", 4.0),
        ("Score: 11", None), ("Score: 0", None), ("looks good", None), ("", None), (None, None), ("Some 5 clues match", None),
    ],
)
def test_parse_score(text, score):
    assert parse_score(text) == score


def test_scores_and_request_shape(tmp_path):
    fake = FakeJudge(lambda n, body: f"ok\nScore: {n % 10 + 1}")
    with running_server(fake.app()) as url:
        judge = judge_for(url, tmp_path, api_key="secret")
        scores = judge.score("clue_overlap", [ITEM, {**ITEM, "prediction": "other"}])
    assert sorted(s.score for s in scores) == [1.0, 2.0] and not any(s.cached for s in scores)
    body = fake.bodies[0]
    assert body["temperature"] == 0 and body["model"] == "judge-a" and ITEM["prediction"] in body["messages"][1]["content"]
    assert fake.auth == ["Bearer secret"] * 2
    assert summarise(scores) == {"mean": 1.5, "scored": 2, "unscored": 0}


def test_retries_5xx_then_succeeds(tmp_path):
    fake = FakeJudge(lambda n, body: 503 if n < 2 else "Score: 6")
    with running_server(fake.app()) as url:
        judge = judge_for(url, tmp_path)
        (score,) = judge.score("clue_overlap", [ITEM])
    assert score.score == 6.0 and fake.calls == 3 and judge.stats.retries == 2


def test_timeout_then_success(tmp_path):
    slow_once = FakeJudge(lambda n, body: "Score: 5")

    def reply(n, body):
        if n == 0:
            time.sleep(1.5)  # blocks the fake's loop past the client's timeout
        return "Score: 5"

    slow_once.reply = reply
    with running_server(slow_once.app()) as url:
        judge = judge_for(url, tmp_path, timeout=0.5)
        (score,) = judge.score("clue_overlap", [ITEM])
    assert score.score == 5.0 and judge.stats.retries >= 1


def test_persistent_failure_is_unscored_and_not_cached(tmp_path):
    fake = FakeJudge(lambda n, body: 500)
    with running_server(fake.app()) as url:
        judge = judge_for(url, tmp_path, max_retries=2)
        (score,) = judge.score("clue_overlap", [ITEM])
        assert score.score is None and "InternalServerError" in score.error and fake.calls == 3
        fake.reply = lambda n, body: "Score: 8"
        (again,) = judge_for(url, tmp_path).score("clue_overlap", [ITEM])
    assert again.score == 8.0 and not again.cached


def test_client_errors_are_not_retried(tmp_path):
    fake = FakeJudge(lambda n, body: 400)
    with running_server(fake.app()) as url:
        (score,) = judge_for(url, tmp_path).score("clue_overlap", [ITEM])
    assert score.score is None and fake.calls == 1


def test_garbled_reply_is_asked_again_then_left_unscored(tmp_path):
    fake = FakeJudge(lambda n, body: "I cannot decide.")
    with running_server(fake.app()) as url:
        judge = judge_for(url, tmp_path)
        (score,) = judge.score("clue_overlap", [ITEM])
        assert (score.score, score.error, fake.calls) == (None, "unparsable reply", 2)
        fake.reply = lambda n, body: "Score: 3"
        (again,) = judge_for(url, tmp_path).score("clue_overlap", [ITEM])
    assert again.score == 3.0  # the garbled reply was never cached


def test_cache_makes_a_rerun_free_and_keys_on_model_and_prompt_version(tmp_path):
    fake = FakeJudge(lambda n, body: "Score: 7")
    items = [{**ITEM, "prediction": f"p{i}"} for i in range(5)]
    with running_server(fake.app()) as url:
        first = judge_for(url, tmp_path).score("clue_overlap", items)
        assert fake.calls == 5
        rerun = judge_for(url, tmp_path)
        second = rerun.score("clue_overlap", items)
        assert fake.calls == 5 and all(s.cached for s in second) and rerun.stats.cache_hits == 5
        assert [s.score for s in second] == [s.score for s in first]
        other_model = LLMJudge(f"{url}/v1", "judge-b", tmp_path / "cache.sqlite", backoff_base=0.01)
        other_model.score("clue_overlap", items[:1])
        assert fake.calls == 6
        prompts_v2 = load_prompts()
        prompts_v2 = type(prompts_v2)("emer-judge-v2", prompts_v2.templates)
        judge_for(url, tmp_path, prompts=prompts_v2).score("clue_overlap", items[:1])
        assert fake.calls == 7


def test_concurrency_overlaps_calls(tmp_path):
    items = [{**ITEM, "prediction": f"p{i}"} for i in range(16)]
    walls = {}
    for concurrency in (1, 16):
        fake = FakeJudge(lambda n, body: "Score: 5", delay=0.05)
        with running_server(fake.app()) as url:
            start = time.perf_counter()
            judge_for(url, tmp_path / str(concurrency), concurrency=concurrency).score("clue_overlap", items)
            walls[concurrency] = time.perf_counter() - start
    assert walls[16] < walls[1] / 2


def test_prompt_files_are_validated(tmp_path):
    prompts = load_prompts()
    assert prompts.version == "emer-judge-v1" and {"clue_overlap", "label_overlap", "cot_rubric"} <= set(prompts.templates)
    with pytest.raises(ValueError, match="inputs lack"):
        prompts.template("clue_overlap").messages({"reference": "x"})
    with pytest.raises(ValueError, match=r"f.yaml: version"):
        parse_prompts({"templates": {}}, "f.yaml")
    bad = {"version": "v", "templates": {"t": {"system": "s", "user": "{a} {b}", "placeholders": ["a"]}}}
    with pytest.raises(ValueError, match=r"templates.t.user: uses placeholders \['a', 'b'\]"):
        parse_prompts(bad, "f.yaml")
    with pytest.raises(ValueError, match="no template 'nope'"):
        prompts.template("nope")
