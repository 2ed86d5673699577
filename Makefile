# Two commands on a fresh machine (Python 3.11+ and git): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo check test test-unit test-deps benchmarks clean

# torch==2.13.0 first: on a CPU machine that has its local wheel, pip takes it instead of
# a multi-GB CUDA build; a looser pin pulled in by another package would not.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

## The main job on the embedded default: the targeted-feedback loop on shipped real data.
demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

#: Files already in the formatter's style: `ruff format --check` holds them there. The rest of the
#: code is wrapped by hand; a file joins this list once `ruff format` has been run on it.
FORMATTED := rlthf_plugin/__main__.py rlthf_plugin/batching.py rlthf_plugin/secret.py rlthf_plugin/vocab.py \
	rlthf_plugin/backends/reasons.py rlthf_plugin/loop/workspace_calibration.py rlthf_plugin/models/_hardware.py \
	rlthf_plugin/service/adapters.py

## Lint (ruff, pyproject [tool.ruff]), format of FORMATTED, types (mypy --strict on selection/ and store/).
check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(FORMATTED)
	$(BIN)/mypy

## The checks, everything the tests need (server environments, Redis), then the whole suite.
test: setup check test-deps
	$(BIN)/python -m pytest -ra

test-deps: setup
	PYTHON=$(BIN)/python bash scripts/install_test_deps.sh

test-unit: setup
	$(BIN)/python -m pytest -ra -m "not integration"

clean:
	rm -rf $(VENV) demo-workspace .pytest_cache .mypy_cache .ruff_cache
