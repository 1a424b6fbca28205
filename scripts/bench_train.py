"""Benchmark training on the tiny recipe: length grouping against random batching, and the multimodal overhead.

    .venv/bin/python scripts/bench_train.py [--num-per-class 8] [--copies 20] [--batch-size 8] [--repeats 30]

Prints one JSON object; nothing is asserted. Everything is generated locally (synthetic clips, tiny encoders, tiny LLM).

Variable lengths: the synthetic recognition conversations are all 100-124 tokens long, which leaves little padding to
remove. So each prepared training sample is written `--copies` times, each copy with its subtitle repeated 1 to k
times inside the prompt (k drawn per copy, capped so the conversation stays within model.max_length), giving lengths
spread roughly evenly from ~100 to ~250 tokens. The copies share the cached features of their source sample.

1. length_grouping: the same steps (one epoch) on the same data with optim.group_by_length=true and false; reports
   samples/s (intervals between optimiser steps, data loading included, first steps excluded as warm-up) and the
   fraction of non-padding positions in the batches the collator produced (media positions count as tokens).
   sampler_analysis replays the samplers without training for several data set sizes: HF's LengthGroupedSampler
   sorts within "megabatches" of min(n // (4 * batch), 50) batches, so on small data sets it barely groups.
2. multimodal_overhead: forward + backward of EmotionLM on one collated batch against its own peft-wrapped LLM fed
   input_ids of the same [b, s] shape, mask and labels (same LoRA); medians over interleaved repeats after warm-up.
3. grpo (scripts/bench_grpo.py; `--only-grpo` runs it alone): rollout tokens/s and optimiser steps/s of stage grpo
   on the tiny twin (configs/recipes/tiny_grpo.yaml), hf rollouts against vLLM rollouts (grpo.rollout_backend) in one run.
4. recipes (scripts/bench_recipes.py; `--only-recipes` runs it alone): step time of every projector recipe's tiny twin
   in configs/recipes/ against the plain `mlp` recipe on the same token ids (equal token count), and the share of the
   step spent in the recipe's connectors (and in a LoRA-tuned encoder), in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]
TRAIN_CONFIG = str(ROOT / "configs/train/tiny_instruct.yaml")
GOAL_NON_PADDING = 0.9
GOAL_OVERHEAD = 1.15


def make_variable_length(train: Path, out: Path, processor, modalities: list[str], copies: int, seed: int) -> list[int]:
    """Write `copies` variants of every sample of `train` into `out`, with 1..k subtitle repeats; return their lengths."""
    from emoreason.model.features import feature_lengths
    from emoreason.schema import Turn, load_samples, write_samples

    samples, lengths = [], []
    for sample in load_samples(train):
        feats = feature_lengths(sample, modalities)
        user, answer = sample.conversations[0], sample.conversations[1]

        def variant(repeats: int):
            content = user.content.replace(sample.subtitle, " ".join([sample.subtitle] * repeats))
            return [Turn(role="user", content=content), answer]

        def length(repeats: int) -> int | None:
            try:
                return len(processor.encode(variant(repeats), feats))
            except ValueError:  # over max_length
                return None

        max_repeats = 1
        while length(max_repeats + 1) is not None:
            max_repeats += 1
        for copy in range(copies):
            repeats = random.Random(f"{seed}/{sample.id}/{copy}").randint(1, max_repeats)
            samples.append(sample.model_copy(update={"id": f"{sample.id}_v{copy}", "conversations": variant(repeats)}))
            lengths.append(length(repeats))
    write_samples(out, samples)
    return lengths


def non_padding_fraction(batches: list[list[int]]) -> float:
    real = sum(sum(b) for b in batches)
    return real / sum(len(b) * max(b) for b in batches)


def sampler_analysis(lengths: list[int], batch_size: int, sizes: list[int], seeds: int = 5) -> list[dict]:
    """Non-padding fraction of one epoch's batches, random vs HF's length grouping, for subsets of several sizes."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    rows = []
    for n in sizes:
        sub = random.Random(n).sample(lengths, n)
        fractions: dict[str, list[float]] = {"random": [], "group_by_length": []}
        for seed in range(seeds):
            g = torch.Generator().manual_seed(seed)
            orders = {
                "random": torch.randperm(n, generator=g).tolist(),
                "group_by_length": get_length_grouped_indices(sub, batch_size, generator=g),
            }
            for name, order in orders.items():
                batches = [[sub[i] for i in order[j : j + batch_size]] for j in range(0, n, batch_size)]
                fractions[name].append(non_padding_fraction(batches))
        ordered = sorted(sub)
        rows.append(
            {
                "num_samples": n,
                "megabatch_size": max(1, min(n // (batch_size * 4), 50)) * batch_size,
                "random": round(statistics.mean(fractions["random"]), 4),
                "group_by_length": round(statistics.mean(fractions["group_by_length"]), 4),
                "sorted_globally": round(non_padding_fraction([ordered[j : j + batch_size] for j in range(0, n, batch_size)]), 4),
            }
        )
    return rows


class StepClock(TrainerCallback):
    """perf_counter() at the end of every optimiser step."""

    def __init__(self):
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def bench_sampling(data, train_path: Path, work: Path, group: bool, batch_size: int, warmup: int) -> dict:
    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup

    num_samples = sum(1 for line in train_path.read_text().splitlines() if line.strip())
    steps = num_samples // batch_size  # one epoch, full batches only
    overrides = data.train_overrides(work / ("grouped" if group else "random")) + [
        f"data.train={train_path}",
        f"optim.batch_size={batch_size}",
        f"optim.max_steps={steps}",
        f"optim.group_by_length={str(group).lower()}",
        "optim.lr_scheduler=constant",
        "optim.warmup_ratio=0",
        "optim.logging_steps=100000",
        "optim.save_steps=100000",
        "optim.resume=false",
    ]
    run = setup(load_train_config(TRAIN_CONFIG, overrides))
    seen: list[list[int]] = []
    collate = run.trainer.data_collator

    def counting_collator(items):
        batch = collate(items)
        seen.append(batch["attention_mask"].sum(dim=1).tolist())
        return batch

    run.trainer.data_collator = counting_collator
    clock = StepClock()
    run.trainer.add_callback(clock)
    run.trainer.train()
    intervals = [b - a for a, b in zip(clock.times[warmup:], clock.times[warmup + 1 :])]
    return {
        "steps": len(clock.times),
        "batches_collated": len(seen),
        "samples_per_s": round(batch_size * len(intervals) / sum(intervals), 2),
        "median_step_ms": round(statistics.median(intervals) * 1e3, 2),
        "non_padding_fraction": round(non_padding_fraction(seen[:steps]), 4),
    }


def build_wider_llm(tiny_llm: str, out: Path, hidden: int) -> Path:
    """The tiny LLM's architecture and tokenizer at `hidden` width and 4 layers, random weights."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_llm)
    config.hidden_size, config.intermediate_size, config.num_hidden_layers = hidden, 4 * hidden, 4
    config.num_attention_heads, config.num_key_value_heads = hidden // 64, max(1, hidden // 128)
    config.layer_types = ["full_attention"] * config.num_hidden_layers
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_llm).save_pretrained(out)
    return out


def bench_overhead(data, train_path: Path, work: Path, batch_size: int, warmup: int, repeats: int, llm: str) -> dict:
    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup

    overrides = data.train_overrides(work / "overhead") + [f"data.train={train_path}", f"model.llm={llm}"]
    run = setup(load_train_config(TRAIN_CONFIG, overrides))
    model, dataset = run.model, run.train_dataset
    model.train()
    # A batch of the median length, so neither path is timed on an unusually short or long one.
    order = sorted(range(len(dataset)), key=lambda i: dataset.lengths[i])
    middle = len(order) // 2 - batch_size // 2
    batch = run.trainer.data_collator([dataset[i] for i in order[middle : middle + batch_size]])
    batch.pop("sample_ids")  # for error messages in the trainer; the model's forward takes tensors only
    media_positions = int((batch["media_ids"] > 0).sum())

    def multimodal():
        model(**batch).loss.backward()

    def text_only():
        # Same [b, s] ids (media positions hold the pad id), mask and labels: only the projectors and splice differ.
        model.llm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"], use_cache=False).loss.backward()

    def projectors_only():
        projected = model.project(batch["features"])
        sum(tokens.sum() for tokens, _ in projected.values()).backward()

    timings: dict[str, list[float]] = {"multimodal": [], "text_only": [], "projectors_only": []}
    fns = {"multimodal": multimodal, "text_only": text_only, "projectors_only": projectors_only}
    for i in range(warmup + repeats):
        for name, fn in fns.items():  # interleaved: the same CPU-frequency and cache conditions for each
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            fn()
            if i >= warmup:
                timings[name].append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    ms = {name: statistics.median(t) * 1e3 for name, t in timings.items()}
    llm_params = sum(p.numel() for n, p in model.named_parameters() if n.startswith("llm."))
    projector_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("llm."))
    return {
        "llm_hidden_size": model.llm_config.hidden_size,
        "batch_shape": list(batch["input_ids"].shape),
        "media_positions_fraction": round(media_positions / int(batch["attention_mask"].sum()), 4),
        "repeats": repeats,
        "multimodal_fwd_bwd_ms": round(ms["multimodal"], 3),
        "text_only_fwd_bwd_ms": round(ms["text_only"], 3),
        "projectors_only_fwd_bwd_ms": round(ms["projectors_only"], 3),
        "overhead_ratio": round(ms["multimodal"] / ms["text_only"], 3),
        "llm_parameters": llm_params,
        "projector_parameters": projector_params,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-per-class", type=int, default=8, help="synthetic clips per class (3/4 of them train)")
    parser.add_argument("--copies", type=int, default=20, help="variable-length copies of each training sample")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3, help="steps / repeats left out of the timings")
    parser.add_argument("--repeats", type=int, default=30, help="timed forward+backward repeats per path")
    parser.add_argument("--wider-hidden", type=int, default=512, help="hidden size of the second, wider LLM (0: skip)")
    parser.add_argument("--workdir", default=None, help="keep the workspace here (default: a temporary folder)")
    parser.add_argument("--native-steps", type=int, default=12, help="steps of the native section (0: skip; scripts/bench_native.py)")
    parser.add_argument("--grpo-steps", type=int, default=10, help="timed steps of the grpo section (0: skip; scripts/bench_grpo.py)")
    parser.add_argument("--only-grpo", action="store_true", help="run the grpo section alone")
    parser.add_argument("--recipe-repeats", type=int, default=20, help="timed steps per recipe of the recipes section (0: skip)")
    parser.add_argument("--only-recipes", action="store_true", help="run the recipes section alone")
    args = parser.parse_args(argv)

    from emoreason.demo import prepare_tiny_data
    from emoreason.model.loading import build_model
    from emoreason.train.config import load_train_config

    torch.manual_seed(0)
    stdout = sys.stdout
    if args.only_grpo:
        print(json.dumps({"grpo": run_grpo_section(args)}, indent=2), file=stdout)
        return 0
    if args.only_recipes:
        print(json.dumps({"recipes": run_recipes_section(args)}, indent=2), file=stdout)
        return 0
    # Training prints its own log lines; keep stdout for the one JSON object.
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp, contextlib.redirect_stdout(sys.stderr):
        work = Path(args.workdir or tmp)
        data = prepare_tiny_data(work / "tiny", num_per_class=args.num_per_class, seed=0)
        model_config = load_train_config(TRAIN_CONFIG, data.train_overrides(work / "unused")).model
        model, processor = build_model(model_config)
        varlen = data.train.parent / "train_varlen.jsonl"  # beside train.jsonl: feature paths are relative to it
        lengths = make_variable_length(data.train, varlen, processor, model.model_config.modalities, args.copies, seed=0)
        del model

        grouping = {
            name: bench_sampling(data, varlen, work, group, args.batch_size, args.warmup)
            for name, group in (("random", False), ("group_by_length", True))
        }
        analysis = sampler_analysis(lengths, args.batch_size, sorted({48, 120, 480, 1600, len(lengths)} & set(range(len(lengths) + 1))))
        overhead = bench_overhead(data, varlen, work, args.batch_size, args.warmup, args.repeats, data.llm)
        wider = None
        if args.wider_hidden:
            wider_llm = build_wider_llm(data.llm, work / f"llm_h{args.wider_hidden}", args.wider_hidden)
            wider = bench_overhead(data, varlen, work, args.batch_size, args.warmup, args.repeats, str(wider_llm))

    grouped_fraction = grouping["group_by_length"]["non_padding_fraction"]
    result = {
        "data": {
            "train_samples": len(lengths),
            "variable_length": f"{args.copies} copies per prepared sample, subtitle repeated 1..k times in the prompt",
            "length_min_median_max": [min(lengths), int(statistics.median(lengths)), max(lengths)],
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
        },
        "length_grouping": grouping
        | {
            "samples_per_s_ratio": round(grouping["group_by_length"]["samples_per_s"] / grouping["random"]["samples_per_s"], 3),
            "goal_non_padding_fraction": GOAL_NON_PADDING,
            "goal_met": grouped_fraction >= GOAL_NON_PADDING,
            "sampler_analysis": analysis,
        },
        "multimodal_overhead": overhead | {"goal_ratio": GOAL_OVERHEAD, "goal_met": overhead["overhead_ratio"] <= GOAL_OVERHEAD},
    }
    if wider is not None:
        result["multimodal_overhead_wider_llm"] = wider | {"goal_met": wider["overhead_ratio"] <= GOAL_OVERHEAD}
    if args.native_steps:
        from bench_native import native_train_section

        with tempfile.TemporaryDirectory(prefix="bench_train_native_") as tmp, contextlib.redirect_stdout(sys.stderr):
            result["native"] = native_train_section(Path(tmp), args.num_per_class, args.native_steps, args.batch_size)
    if args.grpo_steps:
        result["grpo"] = run_grpo_section(args)
    if args.recipe_repeats:
        result["recipes"] = run_recipes_section(args)
    print(json.dumps(result, indent=2), file=stdout)
    return 0


def run_grpo_section(args) -> dict:
    from bench_grpo import grpo_section

    from emoreason.demo import prepare_tiny_data

    with tempfile.TemporaryDirectory(prefix="bench_train_grpo_") as tmp, contextlib.redirect_stdout(sys.stderr):
        work = Path(args.workdir or tmp)
        data = prepare_tiny_data(work / "tiny", num_per_class=args.num_per_class, seed=0)
        return grpo_section(data, work, args.grpo_steps, args.warmup) | {"torch_threads": torch.get_num_threads()}



def run_recipes_section(args) -> dict:
    from bench_recipes import recipes_section

    from emoreason.model.tiny_llm import build_tiny_llm

    with tempfile.TemporaryDirectory(prefix="bench_train_recipes_") as tmp, contextlib.redirect_stdout(sys.stderr):
        work = Path(args.workdir or tmp) / "recipes"
        return recipes_section(work, build_tiny_llm(work / "llm", seed=0), args.warmup, args.recipe_repeats)


if __name__ == "__main__":
    sys.exit(main())
