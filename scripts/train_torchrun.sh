#!/usr/bin/env bash
# Train on one node with every GPU it has (or NPROC processes): a launcher only, hyperparameters live in configs/.
#
#   scripts/train_torchrun.sh configs/train/X.yaml [key=value ...]
#   scripts/train_torchrun.sh configs/train/X.yaml optim.deepspeed=configs/deepspeed/zero2.json
#   NPROC=2 scripts/train_torchrun.sh configs/train/tiny_instruct.yaml optim.deepspeed=configs/deepspeed/zero2.json ...
#
#   NPROC   processes (default: the GPUs `nvidia-smi -L` lists, 1 without a GPU)
#   PYTHON  interpreter (default: the repo's .venv/bin/python when present, else python)
# Extra arguments go to `emoreason train` unchanged (key=value overrides). Without a GPU, DeepSpeed needs
# optim.use_cpu=true (configs/train/tiny_instruct.yaml sets it). Re-running the same command resumes from the
# newest checkpoint in optim.output_dir.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 CONFIG.yaml [key=value ...]" >&2
    exit 2
fi
config=$1
shift

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python; fi
fi
if [ -z "${NPROC:-}" ]; then
    NPROC=$(nvidia-smi -L 2>/dev/null | wc -l || true)
    [ "${NPROC:-0}" -ge 1 ] || NPROC=1
fi

# --standalone: a single-node rendezvous on a free local port, so two jobs on one machine do not collide.
exec "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NPROC" \
    -m emoreason.train.run --config "$config" "$@"
