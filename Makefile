# airseal -- every target installs what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.airseal-installed
VECTORS ?= $(abspath ../shared/vectors)
export AIRSEAL_VECTORS ?= $(VECTORS)

.PHONY: all venv lint test demo bench clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "airseal needs Python >= 3.11")'
	@# Debian splits venv/ensurepip out of python3: install it when creating the venv fails.
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV) && apt-get update -qq \
		&& apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q

demo: venv
	$(PY) -m toolkit.demo --vectors "$(AIRSEAL_VECTORS)"

bench: venv
	@$(PY) tests/bench/verify.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
