"""One rank of a real multi-process training run that records what it saw; launched by test_train_distributed.py.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/train_rank_probe.py \
        --record DIR --config configs/train/tiny_instruct.yaml optim.deepspeed=configs/deepspeed/zero2.json ...

Trains exactly like `emoreason train` (run.setup + run.train), with the training dataset's class swapped for a
subclass that logs every (epoch, index) its __getitem__ serves. Each rank writes DIR/rank<N>.json with:
  seen          [[epoch, index], ...] in the order this rank loaded them
  log_history   trainer.state.log_history
  initial/final {parameter name: sha256 of its fp32 bytes} for every trainable parameter
  engine        the wrapped model's class, the ZeRO stage, the world size
  final_model   the directory run.train returned
Not collected by pytest (the name does not start with test_).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import torch


def trainable_digests(model: torch.nn.Module) -> dict[str, str]:
    """sha256 of each trainable parameter's full fp32 values; ZeRO-3 shards are gathered first."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    gather = _gathered([p for _, p in params])
    with gather:
        return {n: hashlib.sha256(p.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest() for n, p in params}


def _gathered(params: list[torch.nn.Parameter]):
    import contextlib

    if any(hasattr(p, "ds_id") for p in params):  # ZeRO-3 partitioned parameters
        import deepspeed

        return deepspeed.zero.GatheredParameters(params, modifier_rank=None)
    return contextlib.nullcontext()


def record_items(dataset) -> list[list[int]]:
    """Swap the dataset's class for a subclass that appends [epoch, index] to the returned list on each load."""
    seen: list[list[int]] = []
    base = type(dataset)

    class RecordingDataset(base):
        def __getitem__(self, index):
            seen.append([int(self.epoch), int(index)])
            return base.__getitem__(self, index)

    dataset.__class__ = RecordingDataset
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", required=True, help="folder for rank<N>.json")
    parser.add_argument("--config", required=True)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    from emoreason.train.config import load_train_config
    from emoreason.train.run import setup, train

    run = setup(load_train_config(args.config, args.overrides))
    seen = record_items(run.train_dataset)
    initial = trainable_digests(run.model)
    final_model = train(run)

    trainer = run.trainer
    wrapped = trainer.model_wrapped
    zero_stage = wrapped.zero_optimization_stage() if hasattr(wrapped, "zero_optimization_stage") else None
    record = {
        "rank": int(os.environ.get("RANK", 0)),
        "world_size": trainer.args.world_size,
        "engine": type(wrapped).__name__,
        "zero_stage": zero_stage,
        "seen": seen,
        "log_history": trainer.state.log_history,
        "global_step": trainer.state.global_step,
        "initial": initial,
        "final": trainable_digests(trainer.accelerator.unwrap_model(wrapped)),
        "final_model": str(final_model),
    }
    out = Path(args.record)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{record['rank']}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
