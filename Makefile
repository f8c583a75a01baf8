# The two commands of the README:
#   make demo   set up and run idsync's demo on the embedded defaults (SQLite + embedded directory)
#   make test   set up and run the whole test suite (real slapd, SQLite and PostgreSQL)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# test processes for `make test` (pytest-xdist): one per core by default; PYTEST_WORKERS=0 runs in one process
PYTEST_WORKERS ?= auto
# the PostgreSQL the tests use: the one given, else the local one when it answers
TEST_ENV = IDSYNC_TEST_POSTGRES_URL=$${IDSYNC_TEST_POSTGRES_URL:-$$(scripts/postgres-url.sh)}

.PHONY: demo test lint typecheck unit bench clean

demo: $(VENV)/.demo
	$(BIN)/idsync demo

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(TEST_ENV) $(BIN)/pytest -n $(PYTEST_WORKERS) -m 'not timing and not alone' $(PYTEST_ARGS)
	# then the tests that need the machine to themselves, one at a time (exit 5: none selected)
	$(TEST_ENV) $(BIN)/pytest -m 'alone and not timing' $(PYTEST_ARGS) || [ $$? -eq 5 ]

unit: $(VENV)/.dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev
	$(BIN)/mypy

$(VENV)/bin/python:
	scripts/system-deps.sh demo
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(VENV)/bin/python
	scripts/system-deps.sh test
	$(BIN)/pip install -q -e '.[ldap,postgres]' --group dev
	touch $@ $(VENV)/.demo

bench: $(VENV)/.dev
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) idsync-demo .pytest_cache .mypy_cache .ruff_cache
