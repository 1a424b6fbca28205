"""GRPO prompts: samples with features -> (prompt turns, features) per sample id, and the curriculum's row order.

TRL's GRPOTrainer takes a `datasets.Dataset` of prompts and repeats each row num_generations times.
Ours has two columns: `prompt` (the question, for TRL's completion log) and `sample_id`, the key the
trainer looks the prompt turns and features up by (features are tensors, which a Dataset would turn
into lists). The curriculum is written into the row order: phase after phase, each phase's samples
shuffled and cycled to fill exactly its steps, read in order (shuffle_dataset=False), so a resumed run
skips to the same rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from emoreason.features.cache import check_feature_refs
from emoreason.model.features import cached_features
from emoreason.model.generation import prompt_turns
from emoreason.model.prompt_template import sample_prompt_fields
from emoreason.schema import Sample, load_samples
from emoreason.train.grpo_config import CurriculumPhase


class CurriculumError(ValueError):
    """A curriculum phase whose data or task filter leaves no usable sample."""


@dataclass
class PromptStore:
    """Everything a rollout needs per sample id: the prompt turns, the sample (targets) and its feature file folder."""

    samples: dict[str, Sample]
    folders: dict[str, Path]
    modalities: list[str]

    def turns(self, sample_id: str) -> list:
        return prompt_turns(self.samples[sample_id].conversations)

    def prompt_fields(self, sample_id: str) -> dict[str, str | None]:
        """The sample's subtitle and task, for a recipe's prompt template (as in supervised training)."""
        return sample_prompt_fields(self.samples[sample_id])

    def features(self, sample_id: str) -> dict[str, torch.Tensor]:
        return cached_features(self.samples[sample_id], self.folders[sample_id], self.modalities)


def _task(sample: Sample) -> str | None:
    return (sample.source.get("instruction") or {}).get("task")


def load_phase(path: str | Path, task: str | None, modalities: list[str], key: str) -> list[Sample]:
    """The phase's usable samples (conversation and cached features), in file order."""
    samples = [s for s in load_samples(path) if s.conversations and any(m in s.features for m in modalities)]
    if task is not None:
        samples = [s for s in samples if _task(s) == task]
    if not samples:
        what = f" with task {task!r}" if task else ""
        raise CurriculumError(f"key '{key}': {path} has no sample{what} with a conversation and cached features")
    refs = ((s.id, m, ref) for s in samples for m, ref in s.features.items() if m in modalities)
    bad = check_feature_refs(refs, Path(path).parent)
    if bad:
        raise CurriculumError(f"{path}: damaged cached feature file {bad[0].describe()} (re-run `emoreason prep`)")
    return samples


def build_store(phases: list[CurriculumPhase], default_data: str, modalities: list[str]) -> tuple[PromptStore, list[list[str]]]:
    """The store over every phase's samples, and each phase's sample ids."""
    store = PromptStore({}, {}, modalities)
    per_phase: list[list[str]] = []
    for i, phase in enumerate(phases):
        path = Path(phase.data or default_data)
        samples = load_phase(path, phase.task, modalities, f"grpo.curriculum[{i}]")
        for s in samples:
            if s.id in store.samples and store.folders[s.id] != path.parent:
                raise CurriculumError(f"key 'grpo.curriculum[{i}].data': sample id {s.id!r} is also in another phase's data from {store.folders[s.id]}")
            store.samples[s.id], store.folders[s.id] = s, path.parent
        per_phase.append([s.id for s in samples])
    return store, per_phase


def curriculum_rows(per_phase: list[list[str]], phases: list[CurriculumPhase], prompts_per_step: int, seed: int) -> list[str]:
    """Sample ids in training order: phase i fills phases[i].steps x prompts_per_step rows from its own samples."""
    rows: list[str] = []
    for i, (ids, phase) in enumerate(zip(per_phase, phases)):
        rng = random.Random(f"{seed}/curriculum/{i}")
        need = phase.steps * prompts_per_step
        order: list[str] = []
        while len(order) < need:
            epoch = list(ids)
            rng.shuffle(epoch)
            order += epoch
        rows += order[:need]
    return rows


def prompt_dataset(store: PromptStore, rows: list[str]):
    from datasets import Dataset

    def question(sample_id: str) -> str:
        return store.turns(sample_id)[-1].content

    return Dataset.from_dict({"prompt": [question(i) for i in rows], "sample_id": rows})
