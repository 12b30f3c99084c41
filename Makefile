# `make demo` and `make test` are the whole set-up on a fresh machine: each creates .venv and
# installs what it needs when missing (or when pyproject.toml changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/crm.duckdb

.PHONY: demo test bench lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/crm-lab demo --db $(DB)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests notebooks --nbval-lax

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks

lab: $(VENV)/.installed
	PLOOMBER_STATS_ENABLED=false PLOOMBER_VERSION_CHECK_DISABLED=1 $(BIN)/jupyter lab --notebook-dir=notebooks --LabApp.news_url=None --LabApp.extension_manager=readonly --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

clean:
	rm -rf $(VENV) reports data/crm.duckdb data/crm.duckdb.wal data/generated
