# slotmill: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-db lint bench bench-smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## Everything for a first look: embedded PostgreSQL, migrations, demo tenant, API + worker.
run: install
	$(BIN)/slotmill run

## The whole suite. Database: SLOTMILL_TEST_DATABASE_URL, else testcontainers, else embedded.
test: install
	$(BIN)/pytest -q

## Only the tests that need a database (CI runs these against PostgreSQL 15 as well).
test-db: install
	$(BIN)/pytest -q -m db

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench

bench-smoke: install
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) .slotmill .pytest_cache .mypy_cache .ruff_cache .hypothesis
