"""The `grpo:` block of a train config (stage `grpo`): rewards, sampling, the KL term and the curriculum.

Names follow TRL's `GRPOConfig` where one exists (num_generations, max_completion_length, temperature,
top_p, beta, epsilon, loss_type, scale_rewards); the optimiser settings stay in `optim:` as for the
other stages. Values that can be checked without the data are checked here; the rest (a target
missing a field a reward needs, a judge that is down, a batch num_generations does not divide on
this many ranks) is checked by emoreason.train.grpo_run before any step.
"""

from __future__ import annotations

import dataclasses

from emoreason.config import check
from emoreason.model.config import LoraSettings

REWARD_NAMES = ("label", "format", "open_vocab", "au", "cot_consistency", "judge", "constant")
FORMAT_STYLES = ("think_answer", "cot_sections")
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
ROLLOUT_BACKENDS = ("hf", "vllm")


@dataclasses.dataclass
class JudgeSettings:
    base_url: str
    """An OpenAI-compatible endpoint (e.g. `emoreason serve` or vLLM's server), checked before training."""
    model: str
    cache: str
    """The judge cache file (eval/judge_cache.py): a re-run asks nothing twice."""
    api_key_env: str | None = "EMOREASON_JUDGE_API_KEY"
    """Environment variable holding the key (never the key itself in a config)."""
    template: str = "clue_overlap"
    max_retries: int = 4
    timeout: float = 30.0


@dataclasses.dataclass
class CurriculumPhase:
    steps: int
    """Optimiser steps spent on this phase, in order."""
    data: str | None = None
    """Samples JSONL (prepped, with conversations); default data.train."""
    task: str | None = None
    """Keep only samples whose conversation was built for this instruction task (source.instruction.task)."""

    def __post_init__(self) -> None:
        check(self.steps >= 1, "steps", "an integer >= 1", self.steps)


@dataclasses.dataclass
class GRPOSettings:
    rewards: list[str] = dataclasses.field(default_factory=lambda: ["label", "format"])
    """Reward functions, each the evaluator's own metric (REWARD_NAMES)."""
    reward_weights: list[float] | None = None
    """One weight per reward (TRL reward_weights); default 1 each."""
    format_style: str = "think_answer"
    """format reward: 'think_answer' (full match of <think>..</think><answer>..</answer>) or 'cot_sections'
    (the observations / interpretation / conclusion sections of the chain-of-thought builder)."""
    constant_reward: float = 1.0
    """The `constant` reward's value: a control run whose advantages are all zero."""
    labels: list[str] | None = None
    """The closed label set `label` and `cot_consistency` extract against; default: the training targets' labels."""
    judge: JudgeSettings | None = None
    """The `judge` reward's endpoint (required when `judge` is among the rewards)."""
    num_generations: int = 8
    """Completions per prompt (G); must divide the generation batch (batch_size x grad_accum x ranks)."""
    max_completion_length: int = 256
    temperature: float = 0.9
    top_p: float = 1.0
    top_k: int = 0
    beta: float = 0.0
    """KL coefficient (k3 estimator); the reference is the model with its GRPO LoRA disabled."""
    epsilon: float = 0.2
    """PPO clip range."""
    num_iterations: int = 1
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    """'group': advantage = (r - group mean) / (group std + 1e-4), as Facial-R1 and DeepSeekMath."""
    lora: LoraSettings = dataclasses.field(default_factory=LoraSettings)
    """The fresh LoRA GRPO trains on the supervised model (its own LoRA merged in); projectors stay frozen."""
    curriculum: list[CurriculumPhase] | None = None
    """Ordered phases (data set / task filter, steps); default one phase of optim.max_steps on data.train."""
    rollout_backend: str = "hf"
    """'hf': the policy's own generate (transformers); 'vllm': an in-process vLLM engine on the run's init/ with the
    GRPO LoRA synced each optimiser step (emoreason.train.vllm_rollouts, docs/grpo.md "Rollouts")."""
    log_completions: bool = False

    def __post_init__(self) -> None:
        check(bool(self.rewards), "rewards", f"at least one of {list(REWARD_NAMES)}")
        for i, name in enumerate(self.rewards):
            check(name in REWARD_NAMES, f"rewards[{i}]", f"one of {list(REWARD_NAMES)}", name)
        check(len(set(self.rewards)) == len(self.rewards), "rewards", "each reward once", self.rewards)
        if self.reward_weights is not None:
            check(len(self.reward_weights) == len(self.rewards), "reward_weights",
                  f"{len(self.rewards)} weights, one per reward in {self.rewards}", self.reward_weights)
        check(self.format_style in FORMAT_STYLES, "format_style", f"one of {list(FORMAT_STYLES)}", self.format_style)
        check("judge" not in self.rewards or self.judge is not None, "judge", "a judge endpoint (base_url, model, cache) for the 'judge' reward")
        check(self.num_generations >= 2, "num_generations", "an integer >= 2 (advantages compare completions of one prompt)", self.num_generations)
        check(self.max_completion_length >= 1, "max_completion_length", "an integer >= 1", self.max_completion_length)
        check(self.temperature > 0, "temperature", "a positive number", self.temperature)
        check(0 < self.top_p <= 1, "top_p", "a number in (0, 1]", self.top_p)
        check(self.top_k >= 0, "top_k", "an integer >= 0 (0: no top-k)", self.top_k)
        check(self.beta >= 0, "beta", "a number >= 0", self.beta)
        check(self.epsilon > 0, "epsilon", "a positive number", self.epsilon)
        check(self.num_iterations >= 1, "num_iterations", "an integer >= 1", self.num_iterations)
        check(self.loss_type in LOSS_TYPES, "loss_type", f"one of {list(LOSS_TYPES)}", self.loss_type)
        check(self.scale_rewards in SCALE_REWARDS, "scale_rewards", f"one of {list(SCALE_REWARDS)}", self.scale_rewards)
        check(self.rollout_backend in ROLLOUT_BACKENDS, "rollout_backend", f"one of {list(ROLLOUT_BACKENDS)}", self.rollout_backend)

    @property
    def weights(self) -> list[float]:
        return list(self.reward_weights) if self.reward_weights is not None else [1.0] * len(self.rewards)
