# Everything a fresh machine needs goes through these targets.
PYTHON_BIN ?= $(or $(lastword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12.*/bin/python3)),$(shell command -v python3.12))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast e2e bench lint format install clean-db

# uv (from PyPI, into the venv) installs in about a quarter of pip's time; pip is the fallback.
UV_VERSION := 0.13.8
PIP_INSTALL = if [ -x $(VENV)/bin/uv ]; then $(VENV)/bin/uv pip install -q --python $(PY) $(1); \
	else $(PY) -m pip install -q $(1); fi

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_BIN)" || (echo "Python 3.12 is required (pyenv install 3.12, or set PYTHON_BIN)"; exit 1)
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install -q uv==$(UV_VERSION) 2>/dev/null || echo "uv unavailable: installing with pip"
	$(call PIP_INSTALL,-e '.[dev]')
	@touch $(STAMP)

install: $(STAMP)

## make dev: embedded PostgreSQL, migrations, a staff login, web server and a worker
dev: $(STAMP)
	$(PY) manage.py dev

## make test: the whole suite (unit, integration, fault and browser tests)
test: $(STAMP)
	$(PY) -m pytest tests e2e

test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow"

e2e: $(STAMP)
	$(PY) -m pytest e2e

## make bench: benchmarks, printed and written to bench-report.md
bench: $(STAMP)
	$(call PIP_INSTALL,-e '.[dev,bench]')
	$(PY) -m bench

## make lint: ruff, and the import contracts that keep dependencies pointing one way
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-db:
	-$(PY) -m config.embedded_pg stop
	rm -rf .data/pg
