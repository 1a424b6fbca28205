#!/usr/bin/env bash
# Creates the project virtualenv from the project's own files; re-running is cheap when nothing changed.
#   VENV    where to put it (default .venv)
#   EXTRAS  pyproject extras to install (default dev,train,eval,web plus serve on a GPU machine, serve-cpu elsewhere)
#   PYTHON  interpreter to build it from (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if command -v nvidia-smi >/dev/null 2>&1; then serve=serve; else serve=serve-cpu; fi
EXTRAS=${EXTRAS:-dev,train,eval,web,ray,$serve}
PYTHON=${PYTHON:-python3}

stamp="$VENV/.emoreason-installed"
want="$(cat pyproject.toml scripts/setup_env.sh scripts/fix_cpu_torch_stack.py | sha256sum | cut -c1-16) extras=$EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check --quiet)

if ! command -v nvidia-smi >/dev/null 2>&1; then
    # Without a GPU, take torch's CPU build first so nothing below pulls a multi-GB CUDA torch.
    # Elsewhere than this project's machines, point PIP_EXTRA_INDEX_URL at PyTorch's CPU index.
    "${pip[@]}" "torch==2.13.0"
fi
"${pip[@]}" -e ".[${EXTRAS}]"
"$VENV/bin/python" scripts/fix_cpu_torch_stack.py
echo "$want" > "$stamp"
