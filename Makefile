# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# Every install path (make run, make test, .ci/run) installs exactly what uv.lock says.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml uv.lock | cksum | cut -d' ' -f1)

# Node packages: the demo page's Socket.IO client, the JS client suite, the browser suite.
NPM_DIRS := app/web tests/e2e/js tests/e2e/browser
NPM_STAMPS := $(addsuffix /node_modules/.package-lock.json,$(NPM_DIRS))

.PHONY: run test lint types clean bench lock prepare

$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --quiet --frozen --inexact --all-extras
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## Resolve the dependencies again into uv.lock (then commit it).
lock: $(STAMP)
	$(BIN)/uv lock

%/node_modules/.package-lock.json: %/package-lock.json %/package.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error

## Start the service on the embedded defaults (SQLite, in-process rooms, generated dev secrets).
run: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory app/web/node_modules/.package-lock.json; \
	else echo "npm not found: the demo page at /demo/ will ask for 'npm ci' in app/web"; fi
	$(BIN)/python wsgi.py

## MariaDB, Redis and the Debian packages the suites drive (started or installed when missing).
prepare:
	bash tests/prepare.sh

## Set-up, lint, types, then the whole suite twice: MariaDB + Redis, and the embedded profile.
test: prepare $(STAMP) $(NPM_STAMPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	REQUIRE_NODE=1 TEST_BACKEND=mariadb $(BIN)/pytest --durations=15
	REQUIRE_NODE=1 TEST_BACKEND=embedded BACKEND_FREE_TESTS=skip $(BIN)/pytest -m "not mariadb"

## Ours vs the Node peer on MariaDB + Redis (a few minutes); writes bench/RESULTS.md.
bench: $(STAMP)
	bash bench/run.sh

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output $(addsuffix /node_modules,$(NPM_DIRS))
