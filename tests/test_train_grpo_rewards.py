"""GRPO rewards on hand-made completions (malformed ones included), each equal to the evaluator's metric on the
same text; and the bad inputs that stop a grpo run before training, each named by key or sample."""

from __future__ import annotations

import dataclasses
import re
import socket

import pytest
from fake_judge import FakeJudge
from serving_helpers import running_server

from emoreason.config import ConfigError, config_from_dict
from emoreason.eval.classification import classification_metrics
from emoreason.eval.cot import aggregate, score_cot
from emoreason.eval.field_metrics import au_f1
from emoreason.eval.predictions import Aligned, Prediction, predicted_label
from emoreason.eval.scoring import score_open_vocab
from emoreason.eval.taxonomy import shipped_wheel
from emoreason.schema import Sample
from emoreason.train.grpo_config import GRPOSettings, JudgeSettings
from emoreason.train.grpo_rewards import (
    JudgeDownError, RewardDataError, build_rewards, check_judge, check_reward_data,
)

LABELS = ["angry", "happy", "sad", "surprised"]
COT_CONSISTENT = "Observations: a wide smile, a bright voice.\nInterpretation: she is joyful and happy.\nConclusion: happy"
COT_INCONSISTENT = "Observations: tears and a low voice.\nInterpretation: she seems sad, grief.\nConclusion: happy"


@dataclasses.dataclass
class _Holder:
    grpo: GRPOSettings


def sample(sid="s1", **fields) -> Sample:
    data = {"id": sid, "targets": {"emotion": "happy", "open_vocab": ["joyful", "relieved"],
                                   "clues": {"face": "a wide smile"}}, "action_units": {"codes": ["AU06", "AU12"]}}
    return Sample.model_validate(data | fields)


def rewards_for(names, s: Sample, **settings):
    cfg = GRPOSettings(rewards=list(names), **settings)
    return dict(zip(names, build_rewards(cfg, {s.id: s}, LABELS)))


def score(reward, text: str, s: Sample) -> float:
    (value,) = reward(prompts=["q"], completions=[text], sample_id=[s.id])
    return value


@pytest.mark.parametrize("text, expected", [
    ("happy", 1.0), ("She is clearly happy.", 1.0), ("sad", 0.0), ("happy or sad", 0.0), ("", 0.0), ("<answer>", 0.0),
    ("<think>smile</think><answer>happy</answer>", 1.0),
])
def test_label_reward_is_the_evaluators_accuracy(text, expected):
    s = sample()
    value = score(rewards_for(["label"], s)["label"], text, s)
    metric = classification_metrics([s.targets.emotion], [predicted_label(Prediction(id=s.id, text=text), LABELS)], LABELS).accuracy
    assert value == expected == metric


@pytest.mark.parametrize("text, expected", [
    ("<think>a smile</think><answer>happy</answer>", 1.0),
    ("  <think>a smile</think>\n<answer>happy</answer>\n", 1.0),
    ("<think>a smile</think>", 0.0),
    ("<answer>happy</answer>", 0.0),
    ("<think>a smile</think><answer>happy</answer> trailing text", 0.0),
    ("<think>a smile<answer>happy</answer>", 0.0),
    ("happy", 0.0),
])
def test_think_answer_format(text, expected):
    s = sample()
    assert score(rewards_for(["format"], s)["format"], text, s) == expected


@pytest.mark.parametrize("text", [COT_CONSISTENT, "Observations: a smile\nConclusion: happy", "happy", ""])
def test_cot_sections_format_is_the_evaluators_structure(text):
    s = sample()
    value = score(rewards_for(["format"], s, format_style="cot_sections")["format"], text, s)
    assert value == aggregate([score_cot(text, set(), LABELS)]).structure_mean


@pytest.mark.parametrize("text", ["joyful", "joyful, relieved", "happy and calm", "angry", "", "!!!"])
def test_open_vocab_reward_is_the_evaluators_f(text):
    s = sample()
    value = score(rewards_for(["open_vocab"], s)["open_vocab"], text, s)
    metric = score_open_vocab(Aligned([s], [Prediction(id=s.id, text=text)], []), shipped_wheel())
    assert value == pytest.approx(metric["levels"][1]["f1"])
    if text in ("", "!!!", "angry"):
        assert value == 0.0


@pytest.mark.parametrize("text, expected", [
    ("AU6 and AU12 are active", 1.0), ("AU6", 2 * (2 / 3) - 1), ("AU4", -1.0), ("no action units here", -1.0), ("", -1.0),
])
def test_au_reward_is_two_f1_minus_one(text, expected):
    s = sample()
    value = score(rewards_for(["au"], s)["au"], text, s)
    assert value == pytest.approx(expected)
    if "AU" in text:
        assert value == pytest.approx(2 * au_f1([s.action_units.codes], [text])["au_f1"] - 1)


@pytest.mark.parametrize("text, expected", [(COT_CONSISTENT, 1.0), (COT_INCONSISTENT, 0.0), ("happy", 0.0), ("", 0.0)])
def test_cot_consistency_reward_is_the_evaluators_check(text, expected):
    s = sample()
    value = score(rewards_for(["cot_consistency"], s)["cot_consistency"], text, s)
    assert value == expected
    rate = aggregate([score_cot(text, set(), LABELS)]).consistency_rate
    assert value == (1.0 if rate == 1.0 else 0.0)


def test_constant_reward_and_weights():
    s = sample()
    cfg = GRPOSettings(rewards=["label", "constant"], reward_weights=[2.0, 0.5], constant_reward=3.0)
    assert cfg.weights == [2.0, 0.5]
    label, constant = build_rewards(cfg, {s.id: s}, LABELS)
    assert (label.__name__, constant.__name__) == ("label", "constant")
    assert score(constant, "anything at all", s) == 3.0


def test_judge_reward_through_the_cached_client(tmp_path):
    fake = FakeJudge(lambda n, body: "Overlapping clues.\nScore: 7")
    s = sample()
    with running_server(fake.app()) as url:
        cfg = GRPOSettings(rewards=["judge"], judge=JudgeSettings(base_url=f"{url}/v1", model="judge-a", cache=str(tmp_path / "c.sqlite")))
        (judge,) = build_rewards(cfg, {s.id: s}, LABELS)
        check_judge(judge)
        assert score(judge, "a smile", s) == pytest.approx((7 - 1) / 9)
        calls = fake.calls
        assert score(judge, "a smile", s) == pytest.approx((7 - 1) / 9)
        assert fake.calls == calls  # cached


def test_a_judge_that_is_down_stops_before_training(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = sample()
    cfg = GRPOSettings(rewards=["judge"], judge=JudgeSettings(base_url=f"http://127.0.0.1:{port}/v1", model="j",
                                                              cache=str(tmp_path / "c.sqlite"), max_retries=0, timeout=2.0))
    (judge,) = build_rewards(cfg, {s.id: s}, LABELS)
    with pytest.raises(JudgeDownError, match="grpo.judge.base_url"):
        check_judge(judge)


@pytest.mark.parametrize("block, key", [
    ({"rewards": ["label", "accuracy"]}, "rewards[1]"),
    ({"rewards": ["label", "format"], "reward_weights": [1.0]}, "reward_weights"),
    ({"rewards": ["judge"]}, "judge"),
    ({"num_generations": 1}, "num_generations"),
    ({"format_style": "xml"}, "format_style"),
])
def test_bad_grpo_block_names_the_key(block, key):
    with pytest.raises(ConfigError, match=re.escape(f"key 'grpo.{key}'")) as info:
        config_from_dict(_Holder, {"grpo": block})
    assert "expected" in str(info.value)


def test_a_sample_lacking_the_field_a_reward_needs_is_named():
    good, bare = sample("good"), sample("bare", action_units=None)
    samples = {good.id: good, bare.id: bare}
    rewards = build_rewards(GRPOSettings(rewards=["label", "au"]), samples, LABELS)
    with pytest.raises(RewardDataError, match=r"grpo.rewards\[1\]'.*'au'.*sample 'bare'"):
        check_reward_data(rewards, samples, "train.jsonl")


def test_num_generations_must_divide_the_batch():
    from emoreason.train.grpo_run import prompts_per_step

    cfg = _train_config(batch_size=6, grad_accum=1, num_generations=4)
    with pytest.raises(ConfigError, match=r"key 'grpo.num_generations': 4 does not divide the generation batch of 6"):
        prompts_per_step(cfg)
    assert prompts_per_step(_train_config(batch_size=8, grad_accum=2, num_generations=4)) == 4


def _train_config(batch_size: int, grad_accum: int, num_generations: int):
    from emoreason.train.config import TrainConfig

    return config_from_dict(TrainConfig, {
        "stage": "grpo", "init_from": "m", "model": MODEL, "data": {"train": "t.jsonl"},
        "optim": {"output_dir": "o", "batch_size": batch_size, "grad_accum": grad_accum, "max_steps": 3},
        "grpo": {"num_generations": num_generations},
    })


MODEL = {"llm": "x", "encoders": {"audio": {"model": "a"}}, "projectors": {"audio": {"kind": "mlp"}}}


def test_stage_grpo_needs_init_from():
    from emoreason.train.config import TrainConfig

    data = {"stage": "grpo", "model": MODEL, "data": {"train": "t.jsonl"}, "optim": {"output_dir": "o", "max_steps": 1}}
    with pytest.raises(ConfigError, match="key 'init_from'"):
        config_from_dict(TrainConfig, data)
    with pytest.raises(ConfigError, match="key 'grpo'"):
        config_from_dict(TrainConfig, data | {"stage": "instruct", "grpo": {}})

