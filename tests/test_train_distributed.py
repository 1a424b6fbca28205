"""Real two-process training on CPU: torchrun + DeepSpeed ZeRO-2 and ZeRO-3 (configs/deepspeed/) on the tiny recipe.

tests/train_rank_probe.py runs `emoreason train`'s setup/train in each rank and records which samples the rank
loaded in which epoch, the logged losses, and a sha256 of every trainable parameter before and after training.

Two launches (random batching, then group_by_length), about 20 s each on 2 cores. The first launch on a machine also
JIT-builds DeepSpeed's shared-memory CPU communication op (about 100 s, cached in ~/.cache/torch_extensions).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WORLD_SIZE = 2
BATCH_SIZE = 4  # per rank
EPOCHS = 3
# 8 clips per class x 4 classes, 3 of every 4 rounds train = 24 samples: 24 / (4 per rank x 2 ranks) = 3 steps an
# epoch with no padding batch, so every epoch must split exactly in half.
NUM_PER_CLASS = 8


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from emoreason.demo import prepare_tiny_data

    return prepare_tiny_data(tmp_path_factory.mktemp("dist_workspace"), num_per_class=NUM_PER_CLASS, seed=0)


@pytest.fixture(scope="module", params=["random", "group_by_length", "zero3"])
def run(request, data, tmp_path_factory) -> dict:
    """Launch the two ranks once per sampling strategy; return {"records": [rank0, rank1], "num_samples": n}.

    group_by_length matters here: each rank builds its own LengthGroupedSampler from the global torch RNG, and
    accelerate shards that order by batch, so the ranks must draw the same permutation.
    """
    out = tmp_path_factory.mktemp(f"dist_run_{request.param}")
    overrides = data.train_overrides(out / "train") + [
        f"optim.deepspeed={ROOT / ('configs/deepspeed/zero3.json' if request.param == 'zero3' else 'configs/deepspeed/zero2.json')}",
        f"optim.batch_size={BATCH_SIZE}",
        f"optim.num_epochs={EPOCHS}",
        "optim.max_steps=-1",
        "optim.logging_steps=1",
        "optim.resume=false",
        "optim.use_cpu=true",
        f"optim.group_by_length={str(request.param == 'group_by_length').lower()}",
    ]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD_SIZE}"]
    cmd += ["tests/train_rank_probe.py", "--record", str(out / "record"), "--config", "configs/train/tiny_instruct.yaml"]
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    log = out / "torchrun.log"
    with log.open("w") as f:
        proc = subprocess.run(cmd + overrides, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=900)
    assert proc.returncode == 0, f"torchrun exited {proc.returncode}; log tail:\n{log.read_text()[-4000:]}"
    records = [json.loads((out / "record" / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    num_samples = sum(1 for line in data.train.read_text().splitlines() if line.strip())
    return {"records": records, "num_samples": num_samples, "stage": 3 if request.param == "zero3" else 2}


def test_each_rank_is_a_deepspeed_engine_of_the_configured_stage(run):
    for rank, record in enumerate(run["records"]):
        assert record["rank"] == rank
        assert record["world_size"] == WORLD_SIZE
        assert record["engine"] == "DeepSpeedEngine"
        assert record["zero_stage"] == run["stage"]
        steps_per_epoch = run["num_samples"] // (BATCH_SIZE * WORLD_SIZE)
        assert record["global_step"] == EPOCHS * steps_per_epoch


def test_each_epoch_splits_the_data_set_into_disjoint_halves(run):
    n = run["num_samples"]
    assert n % (BATCH_SIZE * WORLD_SIZE) == 0, "the fixture must divide evenly, or accelerate pads with repeats"
    per_rank_epoch: dict[tuple[int, int], list[int]] = {}
    for record in run["records"]:
        for epoch, index in record["seen"]:
            per_rank_epoch.setdefault((record["rank"], epoch), []).append(index)
    # The dataset's epoch counter must advance (EmotionTrainer's DatasetEpochCallback): labels 0..EPOCHS-1 only.
    assert sorted({epoch for _, epoch in per_rank_epoch}) == list(range(EPOCHS))
    for epoch in range(EPOCHS):
        halves = [per_rank_epoch[(rank, epoch)] for rank in range(WORLD_SIZE)]
        for rank, half in enumerate(halves):
            assert len(half) == n // WORLD_SIZE, f"epoch {epoch} rank {rank} loaded {len(half)} items"
            assert len(set(half)) == len(half), f"epoch {epoch} rank {rank} loaded a sample twice: {sorted(half)}"
        assert not set(halves[0]) & set(halves[1]), f"epoch {epoch}: ranks overlap on {set(halves[0]) & set(halves[1])}"
        assert set(halves[0]) | set(halves[1]) == set(range(n))
    # Shuffled per epoch, not the same order every time.
    assert per_rank_epoch[(0, 0)] != per_rank_epoch[(0, 1)]


def test_trainable_parameters_end_identical_across_ranks(run):
    first, second = run["records"]
    # run.setup seeds before building the model, so the ranks also start equal (DeepSpeed would broadcast rank 0's
    # weights anyway; an unseeded LoRA init shows up here first).
    assert first["initial"] == second["initial"], "ranks built different initial weights"
    assert first["final"].keys() == first["initial"].keys() and first["final"]
    differing = [name for name in first["final"] if first["final"][name] != second["final"][name]]
    assert not differing, f"{len(differing)} trainable parameters differ across ranks, e.g. {differing[:3]}"
    untouched = [name for name in first["final"] if first["final"][name] == first["initial"][name]]
    assert not untouched, f"training left {len(untouched)} parameters unchanged, e.g. {untouched[:3]}"
    assert any("lora_" in name for name in first["final"]) and any(name.startswith("projectors.") for name in first["final"])


def test_loss_falls(run):
    losses = [(h["step"], h["loss"]) for h in run["records"][0]["log_history"] if "loss" in h]
    assert [step for step, _ in losses] == list(range(1, run["records"][0]["global_step"] + 1))
    assert losses[-1][1] < losses[0][1], f"loss did not fall: {losses}"
    # Logged losses are reduced across ranks, so both ranks log the same numbers.
    other = [(h["step"], h["loss"]) for h in run["records"][1]["log_history"] if "loss" in h]
    assert [step for step, _ in other] == [step for step, _ in losses]
    assert [loss for _, loss in other] == pytest.approx([loss for _, loss in losses])


def test_final_model_loads_with_the_trained_weights(run):
    from emoreason.model.loading import load_model

    record = run["records"][0]
    model, _ = load_model(record["final_model"])
    loaded = {
        name: hashlib.sha256(p.detach().float().contiguous().numpy().tobytes()).hexdigest()
        for name, p in model.named_parameters()
        if name in record["final"]
    }
    assert loaded.keys() == record["final"].keys()
    assert loaded == record["final"], "the saved model is not the trained one"
