"""torchrun with 2 ranks under DeepSpeed ZeRO-2 on CPU for the tiny native twin, through `emoreason train` itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 2  # per rank


def test_two_ranks_zero2_split_the_data_and_save_one_model(tmp_path):
    from emoreason.demo_native import prepare_native_data
    from emoreason.native.model import NativeModel

    data = prepare_native_data(tmp_path / "ws", num_per_class=2, seed=0)
    num_samples = sum(1 for line in data.train.read_text().splitlines() if line.strip())  # 8 clips, all train
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "emoreason.cli", "train",
           "--config", "configs/train/tiny_native.yaml", *data.train_overrides(out),
           f"optim.deepspeed={ROOT / 'configs/deepspeed/zero2.json'}", "optim.use_cpu=true", f"optim.batch_size={BATCH_SIZE}",
           "optim.num_epochs=1", "optim.logging_steps=1", "optim.save_steps=2"]
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "torchrun.log"
    with log.open("w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=900)
    text = log.read_text()
    assert proc.returncode == 0, f"torchrun exited {proc.returncode}; log tail:\n{text[-4000:]}"
    # One epoch over 8 samples at 2 per rank on 2 ranks: 2 steps (a single process would take 4).
    steps = [json.loads(line.replace("'", '"')) for line in text.splitlines() if line.startswith("{'loss'")]
    assert len(steps) == num_samples // (BATCH_SIZE * 2), text[-2000:]
    # DeepSpeed's own checkpoint beside ours: one ZeRO optimizer-state partition per rank.
    partitions = sorted(p.name for p in (out / "checkpoint-2").glob("global_step2/*optim_states.pt"))
    assert partitions == ["zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"], partitions
    assert (out / "checkpoint-2" / "emoreason_checkpoint.json").is_file() and (out / "checkpoint-2" / "adapter").is_dir()
    model, _ = NativeModel.from_pretrained(out / "model")
    assert model.trainable_parameter_count() == 0  # loaded for inference
    assert (out / "model" / "emoreason_checkpoint.json").is_file()  # marked finished by rank 0 only
