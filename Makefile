# SXT LIMS — the two commands of the quick start are `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run serve test e2e lint format bench migrate demo clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo

# Sets up, migrates, loads demo data (idempotent), then serves the app and a Celery worker on the
# embedded broker; Ctrl-C stops both.
run: demo
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) bash scripts/serve.sh

test: setup
	$(PY) -m pytest -q -m "not e2e"

# Browser tests: Playwright driving Debian's Chromium (installed here if missing; never downloaded).
e2e: setup
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(PY) -m pytest -q -m e2e tests/e2e

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: setup
	$(VENV)/bin/ruff format .

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PIP) install -q --disable-pip-version-check -r requirements-bench.txt
	touch $(BENCH_STAMP)

# Writes docs/benchmarks.md (see bench/run.py).
bench: $(BENCH_STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
