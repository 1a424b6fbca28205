# `make demo` and `make test` each build .venv from pyproject.toml first (a no-op when up to date).
VENV ?= .venv
EXTRAS ?= dev,train
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
