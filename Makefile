# Two entry points for a fresh machine: `make validate` and `make test`. Each sets itself up from PyPI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CANDIDATE ?= stable
ARGS ?=

.PHONY: validate test lint bench clean

$(BIN)/argocd-mirror: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

validate: $(BIN)/argocd-mirror
	$(BIN)/argocd-mirror validate $(CANDIDATE) $(ARGS)

test: $(BIN)/argocd-mirror
	$(BIN)/python -m pytest tests $(ARGS)

lint: $(BIN)/argocd-mirror
	$(BIN)/ruff check validator tests scenarios benchmarks
	$(BIN)/mypy validator

bench: $(BIN)/argocd-mirror
	$(BIN)/python -m pytest benchmarks -o python_files='bench_*.py' --benchmark-only $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
