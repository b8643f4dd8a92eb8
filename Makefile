# Two entry points (README): `make demo` runs the main job, `make test` runs the tests.
# Both create .venv on first use with the CPU build of PyTorch (never a CUDA download).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# OpenMP threads that spin while waiting are 10-100x slower when another process shares
# the cores (see benchmarks/README.md); passive waiting costs little on an idle machine.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,plot,bench]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/autoencode demo

test: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
