# Everything a fresh machine needs goes through these targets.
PYTHON_BIN ?= $(or $(lastword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12.*/bin/python3)),$(shell command -v python3.12))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast e2e bench lint format install clean-db

$(STAMP): pyproject.toml
	@test -n "$(PYTHON_BIN)" || (echo "Python 3.12 is required (pyenv install 3.12, or set PYTHON_BIN)"; exit 1)
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
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
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-db:
	-$(PY) -m config.embedded_pg stop
	rm -rf .data/pg
