# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates .venv itself and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.runtime $@

demo: $(VENV)/.runtime
	$(BIN)/earlyexit demo all

test: $(VENV)/.test
	SAM_CLI_TELEMETRY=0 $(BIN)/python -m pytest

bench: $(VENV)/.test
	$(BIN)/python -m earlyexit.bench

clean:
	rm -rf $(VENV) .pytest_cache
