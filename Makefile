# `make demo` and `make test` are the whole set-up on a fresh machine: each creates .venv and
# installs what it needs when missing (or when pyproject.toml changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/crm.duckdb
# The browser tests drive Debian's Chromium; Playwright never downloads a browser of its own.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test bench lab dashboard clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# `make demo FORCE=1` replaces a database at $(DB) that is not a previous demo build.
demo: $(VENV)/.installed
	$(BIN)/crm-lab demo --db $(DB) $(if $(FORCE),--force)

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || ($(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# The suite runs in TEST_WORKERS processes (pytest-xdist; CI has 2 cores). Each test file stays in
# one worker (--dist loadfile): a notebook's cells share one kernel and a module's fixtures are
# built once. `make test TEST_WORKERS=0` runs everything in one process, in order, for debugging.
TEST_WORKERS ?= 2

test: $(VENV)/.installed-test $(CHROMIUM)
	$(BIN)/python -m pytest tests notebooks --nbval-lax -n $(TEST_WORKERS) --dist loadfile

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks

lab: $(VENV)/.installed
	$(BIN)/crm-lab lab

dashboard: $(VENV)/.installed
	$(BIN)/crm-lab dashboard $(if $(wildcard $(DB)),--db $(DB),--sample)

clean:
	rm -rf $(VENV) reports data/crm.duckdb data/crm.duckdb.wal data/generated
