# airseal -- every target installs what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.airseal-installed
VECTORS ?= $(abspath ../shared/vectors)
export AIRSEAL_VECTORS ?= $(VECTORS)
# apt-get needs root; use sudo only when not already root.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: all venv softhsm postgres tuf-js lint test demo bench clean

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

# SoftHSM provides the throwaway PKCS#11 tokens of the tests, the demo and
# `airseal ceremony rehearse`.
softhsm:
	@command -v softhsm2-util >/dev/null 2>&1 || { $(SUDO) apt-get update -qq \
		&& $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2; }

# PostgreSQL binaries for the log's shared-storage tests: each test session
# runs a throwaway cluster of its own (tests/support/postgres.py), so no
# service needs to run. Debian's package installs /usr/lib/postgresql/<v>/bin.
postgres:
	@compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || { $(SUDO) apt-get update -qq \
		&& $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# tuf-js, the JavaScript TUF client of the trust interop tests, pinned by
# tests/interop/js/package-lock.json (tuf-js 5 needs Node >= 20.17; the tests
# skip, or fail under CI, when node is older or missing).
JS_DIR := tests/interop/js
JS_STAMP := $(JS_DIR)/node_modules/.airseal-installed

$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq \
		&& $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

tuf-js: $(JS_STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint softhsm postgres tuf-js
	$(VENV)/bin/pytest -q

DEMO := .demo

# The demo so far: a root key ceremony rehearsed on throwaway SoftHSM tokens,
# its outputs checked as a second machine would, then the offline verifier on
# the public Sigstore vectors.
demo: venv softhsm
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(VENV)/bin/airseal ceremony rehearse ceremony/examples/root-ceremony.toml --out $(DEMO)/ceremony
	$(VENV)/bin/airseal ceremony verify $(DEMO)/ceremony
	$(PY) -m toolkit.demo --vectors "$(AIRSEAL_VECTORS)"

# Stdout is JSON lines, one object per benchmark; set-up output and progress
# go to stderr.
bench:
	@$(MAKE) --no-print-directory venv softhsm postgres >&2
	@set -o pipefail; $(PY) tests/bench/verify.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/hsm.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/log_storage.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/log.py | $(PY) -m json.tool --compact

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache .hypothesis
