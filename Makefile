# Shequ GIS — two commands: `make run` (the product on the demo data) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test fuzz bench setup system venv assets lint stop clean

setup: system venv assets

system:
	@bash scripts/install_system.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed var/.numba-warm

## the parser's numba kernels (cache=True) compiled once here, and its run-time arrays derived from the weights
## and saved (address_registry/parsing/_arrays.py), so the first `shequ parse` answers as fast as the next
## (cold, the first call spends ~12 s or more compiling); redone when a kernel, a deriving module or a weight changes
PARSER_WARM_DEPS := $(addprefix address_registry/parsing/,_lstm.py _decode.py _flags.py _keys.py _keyspec.py _arrays.py model.py neural.py \
	features.py crf_weights.bin admin_lexicon.json) $(wildcard address_registry/parsing/nn_weights*.bin)
var/.numba-warm: $(PARSER_WARM_DEPS) | $(VENV)/.installed
	@mkdir -p var
	$(BIN)/python -m gis_api.cli parse 浙江省杭州市西湖区文三路90号 北京市海淀区中关村大街27号 > /dev/null
	touch $@

assets: venv
	@bash scripts/install_assets.sh

## make run: install what is missing, start the embedded PostGIS, migrate, load the demo, serve on :8000
run: setup
	$(BIN)/shequ db start
	SHEQU_DEMO=1 $(BIN)/shequ demo all
	SHEQU_DEMO=1 $(BIN)/shequ serve --host $(HOST) --port $(PORT)

## make test: the same set-up, lint (ruff, mypy), then pytest against a real (throw-away) PostGIS
test: setup lint
	$(BIN)/pytest

## make fuzz: the long property / fuzz runs (tests marked `fuzz`), with their full budgets (SHEQU_FUZZ=1)
fuzz: setup
	SHEQU_FUZZ=1 $(BIN)/pytest -m fuzz -p no:cacheprovider

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

## make bench: benchmarks side by side with their peers; figures go to bench-output/ and docs/benchmarks.md
bench: setup $(VENV)/.bench-installed
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

## make lint: ruff (style, imports, docstrings D1, complexity C90 <= 15) and mypy, as configured in pyproject.toml
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

stop:
	-$(BIN)/shequ db stop

clean: stop
	rm -rf var test-output bench-output
