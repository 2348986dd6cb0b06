# Two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATE   ?= 2025-02-12

.PHONY: run serve test test-cloud image-check check lint format types bench bench-backtest bench-service bench-cloud clean

$(BIN)/nbaprops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.service: $(BIN)/nbaprops
	$(BIN)/pip install --quiet -e '.[service]'
	touch $@

$(VENV)/.dev: $(BIN)/nbaprops
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## run: set up and run the main job (a batch for $(DATE) on the shipped box scores)
run: $(BIN)/nbaprops
	$(BIN)/nbaprops predict --date $(DATE)

## serve: the HTTP API and dashboard on http://127.0.0.1:8080/ (docs/service.md)
serve: $(VENV)/.service
	$(BIN)/nbaprops serve

## test: set up with the dev extras and run the whole test suite
test: $(VENV)/.dev
	$(BIN)/python -m pytest -q -rs -n auto --dist loadfile

## test-cloud: only the tests on the Google Cloud emulators (pytest marker `cloud`; they skip without gcloud/Java)
test-cloud: $(VENV)/.dev
	$(BIN)/python -m pytest -q -rs -m cloud

## image-check: build the Dockerfile's image without Docker and prove it starts: its stages played on a
## debootstrapped Debian bookworm (root, chroot; downloads from Debian's mirror and PyPI, so not in `make test`),
## then nbaprops --version, worker --help, import lightgbm, and a worker and serve on the emulators (docs/cloud.md)
image-check: $(VENV)/.dev
	$(PYTHON) tools/image_check.py --emulators --python $(BIN)/python

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

## bench-service: 200 polling clients while a slate runs in `nbaprops serve` (loopback only)
bench-service: $(VENV)/.service
	$(BIN)/python benchmarks/service.py

## bench-cloud: the slate on the GCP backend (the three emulators) with 1, 2 and 4 worker processes, and embedded
bench-cloud: $(VENV)/.dev
	$(BIN)/python benchmarks/cloud.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
