# slotmill: `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run shell test test-db lint bench bench-smoke clean lock

install: $(STAMP)

# Runtime dependencies at the versions of requirements.lock, which the image installs too:
# tests run what production runs, and a new upstream release changes nothing until `make lock`.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

## Everything for a first look: embedded PostgreSQL, migrations, demo tenant, API + worker.
run: install
	$(BIN)/slotmill run

## A subshell with .venv/bin first on PATH: `slotmill ...` as the README writes it. exit leaves.
shell: install
	@echo "slotmill shell: $(abspath $(BIN)) is first on PATH; 'exit' leaves it." >&2
	@PATH="$(abspath $(BIN)):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))" $${SHELL:-/bin/sh}

## The whole suite. Database: SLOTMILL_TEST_DATABASE_URL, else testcontainers, else embedded.
test: install
	$(BIN)/pytest -q

## Only the tests that need a database (CI runs these against PostgreSQL 15 as well).
test-db: install
	$(BIN)/pytest -q -m db

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench

bench-smoke: install
	$(BIN)/python -m bench --smoke

## Pin the image's runtime dependencies (requirements.lock) at the versions .venv runs:
## install the project alone into a scratch venv, constrained to .venv, and freeze that.
lock:
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/python -m venv "$$tmp/venv"; \
	$(BIN)/pip freeze --exclude-editable > "$$tmp/constraints.txt"; \
	"$$tmp/venv/bin/pip" install -q -c "$$tmp/constraints.txt" .; \
	{ sed -n '/^#/p' requirements.lock; "$$tmp/venv/bin/pip" freeze --exclude slotmill | LC_ALL=C sort -f; } > "$$tmp/lock"; \
	mv "$$tmp/lock" requirements.lock

clean:
	rm -rf $(VENV) .slotmill .pytest_cache .mypy_cache .ruff_cache .hypothesis
