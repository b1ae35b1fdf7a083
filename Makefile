# calsync — every developer and CI command. `make demo` and `make test` install what they need
# (a virtualenv in .venv) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: help install fmt lint test unit integration e2e demo bench soak clean

help:
	@echo "make demo   - run the whole pipeline in the local sandbox and print the interactions"
	@echo "make test   - lint, type-check and run every test (unit, integration, e2e)"
	@echo "make fmt    - format and auto-fix lint findings"
	@echo "make bench  - run the benchmarks, write bench/results.json"
	@echo "make soak   - the seeded fault soak through the real pipeline, write bench/soak.json"

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: install lint-infra
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# Infra checks: terraform fmt (when terraform is installed) and checkov in its own virtualenv
# (its pinned dependencies conflict with the app's), installed here on first use.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@
.PHONY: lint-infra
lint-infra: $(CHECKOV_STAMP)
	@if command -v terraform >/dev/null 2>&1; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff infra && echo "terraform fmt: infra/ is formatted"; else echo "!!!!! NOTE: terraform is not installed: 'terraform fmt -check' on infra/ was NOT run !!!!!"; fi
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download -d infra --framework terraform

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope tests

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope tests/integration

e2e: install
	$(BIN)/python -m pytest tests/e2e

demo: install
	$(BIN)/calsync demo

bench: install
	$(BIN)/python -m bench

SOAK_ARGS ?= --seed 1
soak: install
	$(BIN)/python -m soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
