# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
# Each creates .venv itself and installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# checkov pins an old boto3 and packaging that break aws-sam-cli and pytest: it gets a venv of its own.
# The stamp names the version, so changing CHECKOV_VERSION rebuilds that venv.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.checkov-$(CHECKOV_VERSION)

.PHONY: demo test bench clean

# Each install says what it does first: the first `make demo` spends about a minute installing (pip --quiet).
$(BIN)/python:
	@echo "make: creating $(VENV) with $(PYTHON) and upgrading pip"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	@echo "make: installing earlyexit's dependencies into $(VENV) (about a minute, once)"
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	@echo "make: installing earlyexit and its test tools into $(VENV) (a few minutes, once)"
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.runtime $@

$(CHECKOV_STAMP):
	@echo "make: installing checkov $(CHECKOV_VERSION) into $(CHECKOV_VENV) (a minute or two, once)"
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

demo: $(VENV)/.runtime
	@echo "make: playing the demo on the embedded engine"
	$(BIN)/earlyexit demo all

# The browser tests use Playwright (test extra) with Debian's Chromium (apt-get install chromium); without it they skip.
test: $(VENV)/.test $(CHECKOV_STAMP)
	SAM_CLI_TELEMETRY=0 $(BIN)/python -m pytest

bench: $(VENV)/.test
	$(BIN)/python -m earlyexit.tools.bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache
