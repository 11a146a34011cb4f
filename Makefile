# wirefeed: `make run` and `make test` are all a new user needs (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.wirefeed-installed
LAKE ?= ./lake
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: setup services test test-unit lint sanitize run bench minio minio-stop minio-env clean

# Byte-compiles our sources as a regular install does (an editable one does not; where PYTHONDONTWRITEBYTECODE
# is set, every run would compile ~40 modules again: ~50 ms of each process's start-up). Stale files are
# rebuilt in memory by Python itself, so this is only ever a speed-up.
setup: $(STAMP)
	@$(BIN)/python -m compileall -q pipeline schemas dags

# The editable install compiles the tagger's optional C extensions in place (pipeline/tagging/*.c; without a C
# compiler they are skipped with a warning and the tagger runs the same code in Python).
$(STAMP): requirements/lock.txt pyproject.toml $(wildcard pipeline/*/*.c pipeline/*/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements/lock.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Debian's postgresql and redis-server for the Airflow integration tests (installed with apt-get when missing;
# the tests start their own servers on free loopback ports, from scratch each run).
services:
	scripts/services.sh install

# Unit + integration tests. Starts MinIO (built from source once per machine) unless
# AWS_ENDPOINT_URL already points at an S3-compatible endpoint.
test: setup services
	scripts/with-minio.sh $(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check pipeline dags tests bench
	$(BIN)/ruff format --check pipeline dags tests bench
	$(BIN)/mypy

# The C extensions built with AddressSanitizer and UndefinedBehaviorSanitizer, and the tests that reach them
# (scripts/sanitize.sh; CI runs it after `make test`).
sanitize: setup
	scripts/sanitize.sh $(PYTEST_ARGS)

# Runs the real wire_daily DAG once (airflow dags test) on the bundled sample feeds into $(LAKE).
run: setup
	LAKE="$(LAKE)" scripts/run-embedded.sh

bench: setup
	scripts/with-minio.sh $(BIN)/python -m bench $(BENCH_ARGS)

minio:
	scripts/minio.sh start

minio-stop:
	scripts/minio.sh stop

minio-env:
	@scripts/minio.sh env

clean:
	rm -rf $(VENV) .airflow lake .minio .pytest_cache .mypy_cache .ruff_cache
