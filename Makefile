# Two commands do all set-up on a fresh machine:
#   make run    create .venv, install, run the quickstart sweep embedded (no services needed)
#   make test   create .venv if missing, install, run pytest (the suite starts and stops its own Redis)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test install lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/orchestrator run examples/sweeps/quickstart.yaml

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# Benchmarks need Optuna (in the test extra) and PyTorch (for Optuna's GPSampler): installed here.
# Every script in benchmarks/ but the shared harness.py; `make bench BENCH_ARGS=--smoke` runs each
# at its smallest size in seconds (what tests/test_benchmarks.py does).
BENCHMARKS := $(filter-out benchmarks/harness.py,$(sort $(wildcard benchmarks/*.py)))

bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[bench]'
	set -e; for script in $(BENCHMARKS); do echo "== $$script"; $(PY) $$script $(BENCH_ARGS); done

clean:
	rm -rf $(VENV) .orchestrator results .pytest_cache
