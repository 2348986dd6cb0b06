# Two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATE   ?= 2025-02-12

.PHONY: run test check lint format types bench bench-backtest clean

$(BIN)/nbaprops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/nbaprops
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## run: set up and run the main job (a batch for $(DATE) on the shipped box scores)
run: $(BIN)/nbaprops
	$(BIN)/nbaprops predict --date $(DATE)

## test: set up with the dev extras and run the whole test suite
test: $(VENV)/.dev
	$(BIN)/python -m pytest -q -rs

## lint: ruff's checks and its formatter (check only; `make format` rewrites)
lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

format: $(VENV)/.dev
	$(BIN)/ruff format src tests benchmarks tools
	$(BIN)/ruff check --fix src tests benchmarks tools

## types: mypy --strict on src/
types: $(VENV)/.dev
	$(BIN)/mypy

## check: lint, types and tests, as developers run them before a commit
check: lint types test

## bench: the slate and consolidation benchmark (benchmarks/backtest.py is the long one: `make bench-backtest`)
bench: $(BIN)/nbaprops
	$(BIN)/python benchmarks/slate.py

bench-backtest: $(BIN)/nbaprops
	$(BIN)/python benchmarks/backtest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
