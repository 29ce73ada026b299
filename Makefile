# Two commands on a fresh machine:
#   make test     bootstrap .venv, then run the whole test suite
#   make figures  bootstrap .venv, then execute every numbered notebook (papermill)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.topogen-installed

.PHONY: test figures smoke bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[notebooks,test,distributed]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

figures: $(STAMP)
	$(PY) -m topogen.reproduce

smoke: $(STAMP)
	$(PY) -m topogen.reproduce --smoke

bench: $(STAMP)
	$(PY) benchmarks/bench_persistence.py
	$(PY) benchmarks/bench_losses.py

clean-venv:
	rm -rf $(VENV)
