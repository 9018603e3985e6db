# The README's two commands: `make run` (embedded default suite) and `make test` (test suite).
# Both set up .venv idempotently first (scripts/setup_env.sh); nothing is fetched from a model hub.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions

.PHONY: setup run test test-fast bench clean

setup:
	@bash scripts/setup_env.sh

run: setup
	$(PY) -m harness run

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) benchmarks/metrics.py
	$(PY) benchmarks/generation.py
	$(PY) benchmarks/training.py

clean:
	rm -rf runs .pytest_cache .tox
