# make test    — create .venv if missing, install the project into it, run the test suite
# make table1  — the same set-up, then the whole workflow up to results/table1.csv
# make study   — the same set-up, then the view-consistency study (results/study/, config/study.yaml)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.vicokd-installed
CORES ?= all

.PHONY: install test table1 report study test-cluster bench clean-results

install: $(STAMP)

# torch's three packages are held at the pins in constraints.txt, so nothing swaps them.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]' --config-settings editable_mode=compat
	touch $@

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q

table1: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) results/table1.csv

report: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) results/report.html

study: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --configfile config/study.yaml --cores $(CORES) results/study/view_consistency.csv

test-cluster: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -m cluster tests/cluster

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m benchmarks

clean-results:
	rm -rf results logs benchmarks/results .snakemake
