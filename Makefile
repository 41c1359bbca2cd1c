# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## Start the service on the embedded defaults (SQLite, in-process rooms, generated dev secrets).
run: $(STAMP)
	$(BIN)/python wsgi.py

## Lint, then the whole suite twice: MariaDB + Redis, and the embedded SQLite + memory profile.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TEST_BACKEND=mariadb $(BIN)/pytest
	TEST_BACKEND=embedded $(BIN)/pytest -m "not mariadb"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output
