# calsync — every developer and CI command. `make demo` and `make test` install what they need
# (a virtualenv in .venv) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: help install fmt lint test unit integration e2e demo bench clean

help:
	@echo "make demo   - run the whole pipeline in the local sandbox and print the interactions"
	@echo "make test   - lint, type-check and run every test (unit, integration, e2e)"
	@echo "make fmt    - format and auto-fix lint findings"
	@echo "make bench  - run the benchmarks, write bench/results.json"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests/integration

e2e: install
	$(BIN)/python -m pytest tests/e2e

demo: install
	$(BIN)/calsync demo

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
