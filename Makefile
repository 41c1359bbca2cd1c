# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

# Node packages: the demo page's Socket.IO client, the JS client suite, the browser suite.
NPM_DIRS := app/web tests/e2e/js tests/e2e/browser
NPM_STAMPS := $(addsuffix /node_modules/.package-lock.json,$(NPM_DIRS))

.PHONY: run test lint clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

%/node_modules/.package-lock.json: %/package-lock.json %/package.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error

## Start the service on the embedded defaults (SQLite, in-process rooms, generated dev secrets).
run: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory app/web/node_modules/.package-lock.json; \
	else echo "npm not found: the demo page at /demo/ will ask for 'npm ci' in app/web"; fi
	$(BIN)/python wsgi.py

## Lint, then the whole suite twice: MariaDB + Redis, and the embedded SQLite + memory profile.
test: $(STAMP) $(NPM_STAMPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TEST_BACKEND=mariadb $(BIN)/pytest
	TEST_BACKEND=embedded $(BIN)/pytest -m "not mariadb"

## Ours vs the Node peer on MariaDB + Redis (a few minutes); writes bench/RESULTS.md.
bench: $(STAMP)
	bash bench/run.sh

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output $(addsuffix /node_modules,$(NPM_DIRS))
