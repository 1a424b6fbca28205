"""GRPO rewards: each one the evaluator's own metric on one completion, so a reward and its metric cannot disagree.

A reward is called the way TRL calls reward functions, `reward(prompts=..., completions=..., **columns)`,
with the `sample_id` column naming each completion's sample; it returns one float per completion.

| reward            | value                                                            | the evaluator's function                  |
|-------------------|------------------------------------------------------------------|-------------------------------------------|
| `label`           | 1 if the answer names the target label, else 0                   | eval.predictions.predicted_label          |
| `format`          | think_answer: 1 on a full `<think>..</think><answer>..</answer>`; cot_sections: sections present / 3 | eval.cot.think_answer_match / structure |
| `open_vocab`      | EW-based F of the answer's words against targets.open_vocab      | eval.open_vocab.open_vocab_metrics        |
| `au`              | 2 x AU set F1 - 1; -1 when the answer names no AU                | eval.field_metrics.au_f1                  |
| `cot_consistency` | 1 if the conclusion names the label the reasoning supports, else 0 | eval.cot.consistency                    |
| `judge`           | (clue-overlap score - 1) / 9 from the cached LLM judge           | eval.judge_client.LLMJudge                |
| `constant`        | a fixed value: all advantages 0, the control run                 |                                           |
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from emoreason.schema import Sample
from emoreason.train.grpo_config import GRPOSettings

OPEN_VOCAB_LEVEL = 1  # the wheel level open_vocab scores on: the primary emotions, MER-UniBench's headline


class RewardDataError(ValueError):
    """A sample lacks the target field a configured reward needs; the message names the reward, sample and field."""


class JudgeDownError(RuntimeError):
    """The judge endpoint did not answer (after the judge client's retries)."""


def _text(completion) -> str:
    # TRL hands conversational completions as [{"role": "assistant", "content": ...}]
    if isinstance(completion, list):
        return "".join(turn["content"] for turn in completion)
    return completion


def au_target(sample: Sample) -> list[str] | None:
    """The sample's annotated AU codes (the schema field, else the `source.action_units` the evaluator also reads)."""
    if sample.action_units is not None and sample.action_units.codes:
        return list(sample.action_units.codes)
    codes = sample.source.get("action_units")
    return list(codes) if codes else None


class Reward:
    """A reward over completions of known samples; subclasses score one text against one sample."""

    name = "reward"
    needs = "nothing"

    def __init__(self, samples: Mapping[str, Sample]):
        self.samples = samples

    @property
    def __name__(self) -> str:  # TRL names the logged metric rewards/<name>/mean after it
        return self.name

    def missing(self, sample: Sample) -> bool:
        """True when `sample` lacks the field this reward scores against."""
        return False

    def score(self, text: str, sample: Sample) -> float:
        raise NotImplementedError

    def __call__(self, prompts=None, completions=None, sample_id=None, **_) -> list[float]:
        return [self.score(_text(c), self.samples[i]) for c, i in zip(completions, sample_id, strict=True)]


class LabelReward(Reward):
    name, needs = "label", "targets.emotion"

    def __init__(self, samples, labels: Sequence[str]):
        super().__init__(samples)
        self.labels = list(labels)

    def missing(self, sample):
        return not (sample.targets and sample.targets.emotion)

    def score(self, text, sample):
        from emoreason.eval.predictions import Prediction, predicted_label

        return float(predicted_label(Prediction(id=sample.id, text=text), self.labels) == sample.targets.emotion)


class FormatReward(Reward):
    name = "format"

    def __init__(self, samples, style: str):
        super().__init__(samples)
        self.style = style

    def score(self, text, sample):
        from emoreason.eval.cot import split_sections, structure, think_answer_match

        if self.style == "think_answer":
            return float(think_answer_match(text))
        return structure(split_sections(text)).score


class OpenVocabReward(Reward):
    name, needs = "open_vocab", "targets.open_vocab"

    def missing(self, sample):
        return not (sample.targets and sample.targets.open_vocab)

    def score(self, text, sample):
        from emoreason.eval.open_vocab import open_vocab_metrics
        from emoreason.eval.predictions import Prediction, predicted_open_vocab

        words = predicted_open_vocab(Prediction(id=sample.id, text=text))
        return open_vocab_metrics([sample.targets.open_vocab], [words]).levels[OPEN_VOCAB_LEVEL].f1


class AUReward(Reward):
    name, needs = "au", "action_units.codes (or source.action_units)"

    def missing(self, sample):
        return au_target(sample) is None

    def score(self, text, sample):
        from emoreason.eval.field_metrics import au_codes, au_f1

        if not au_codes(text):
            return -1.0
        return 2 * au_f1([au_target(sample)], [text])["au_f1"] - 1


class ConsistencyReward(Reward):
    name = "cot_consistency"

    def __init__(self, samples, labels: Sequence[str]):
        super().__init__(samples)
        self.labels = list(labels)

    def score(self, text, sample):
        from emoreason.eval.cot import consistency, split_sections

        return float(consistency(split_sections(text), self.labels).consistent is True)


class JudgeReward(Reward):
    name, needs = "judge", "targets.clues or targets.reasoning"

    def __init__(self, samples, judge):
        super().__init__(samples)
        self.judge = judge
        self.template = "clue_overlap"

    def missing(self, sample):
        from emoreason.eval.explanations import reference_explanation

        return reference_explanation(sample) is None

    def __call__(self, prompts=None, completions=None, sample_id=None, **_) -> list[float]:
        from emoreason.eval.explanations import reference_explanation

        items = [{"reference": reference_explanation(self.samples[i]), "prediction": _text(c)} for c, i in zip(completions, sample_id, strict=True)]
        scores = self.judge.score(self.template, items)
        failed = [s for s in scores if s.score is None and s.fault == "failed"]
        if failed:
            raise JudgeDownError(f"judge {self.judge.base_url} failed on {len(failed)} of {len(scores)} completions: {failed[0].error}")
        # An unparsable reply scores the worst: the completion earned nothing the judge could read.
        return [0.0 if s.score is None else (float(s.score) - 1) / 9 for s in scores]


class ConstantReward(Reward):
    name = "constant"

    def __init__(self, samples, value: float):
        super().__init__(samples)
        self.value = value

    def score(self, text, sample):
        return self.value


def make_judge(settings: GRPOSettings):
    from emoreason.eval.judge_client import LLMJudge

    judge = settings.judge
    key = os.environ.get(judge.api_key_env) if judge.api_key_env else None
    return LLMJudge(judge.base_url, judge.model, judge.cache, api_key=key, max_retries=judge.max_retries, timeout=judge.timeout)


def build_rewards(settings: GRPOSettings, samples: Mapping[str, Sample], labels: Sequence[str], judge=None) -> list[Reward]:
    """The configured rewards, in config order (their weights are settings.weights)."""
    def make(name: str) -> Reward:
        if name == "label":
            return LabelReward(samples, labels)
        if name == "format":
            return FormatReward(samples, settings.format_style)
        if name == "open_vocab":
            return OpenVocabReward(samples)
        if name == "au":
            return AUReward(samples)
        if name == "cot_consistency":
            return ConsistencyReward(samples, labels)
        if name == "judge":
            return JudgeReward(samples, judge if judge is not None else make_judge(settings))
        if name == "constant":
            return ConstantReward(samples, settings.constant_reward)
        raise ValueError(f"unknown reward {name!r}")

    return [make(name) for name in settings.rewards]


def check_reward_data(rewards: Sequence[Reward], samples: Mapping[str, Sample], where: str) -> None:
    """RewardDataError naming the first sample (and how many in all) lacking a field a reward needs."""
    for i, reward in enumerate(rewards):
        lacking = [s.id for s in samples.values() if reward.missing(s)]
        if lacking:
            raise RewardDataError(
                f"{where}: key 'grpo.rewards[{i}]' ({reward.name!r}) needs {reward.needs} on every sample; "
                f"sample {lacking[0]!r} has none ({len(lacking)} of {len(samples)} samples lack it)"
            )


def check_judge(reward: JudgeReward) -> None:
    """Ask the judge once before any step, so a judge that is down stops the run before training starts."""
    probe = reward.judge.score_one(reward.template, {"reference": "a smile and a bright voice", "prediction": "a smile"})
    if probe.score is None and probe.fault == "failed":
        raise JudgeDownError(f"key 'grpo.judge.base_url': the judge at {reward.judge.base_url} does not answer: {probe.error}")
