# Two commands on a fresh machine:
#   make test     bootstrap .venv, then lint (ruff) and run the whole test suite
#   make figures  bootstrap .venv, then execute every numbered notebook (papermill), one after another
# and while developing:
#   make test-fast  the unit tests alone (no notebooks, no Dask cluster, no long training), about a minute
#   make lab-check  Jupyter Lab in headless Chromium (installs Debian's chromium and the Python driver if missing)
# and for editing:
#   make lab      bootstrap .venv, then Jupyter Lab in notebooks/ with the project's kernel
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.topogen-installed
# Extra `jupyter lab` options, e.g. LAB_FLAGS="--no-browser --port 8890"; root (in a container) needs --allow-root.
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: test test-fast lint figures smoke bench lab lab-check clean-venv

# pip byte-compiles what it installs on one core; compileall does the same on every core (half a minute less on two).
# Like pip, it passes over a file it cannot compile (torch ships one in 3.12's syntax): that file is compiled, or
# fails, only if something imports it, so its exit status is not checked.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -e '.[notebooks,test,distributed]'
	$(PY) -m compileall -q -q -j 0 $(VENV)/lib || true
	touch $(STAMP)

# Everything but the browser check, which needs Chromium: `make lab-check` runs it (CI runs both). The tests are
# spread over the cores by pytest-xdist; tests that share a fixture's work carry one xdist_group.
XDIST = -n auto --dist loadgroup

test: lint
	$(PY) -m pytest -m "not browser" $(XDIST)

test-fast: lint
	$(PY) -m pytest -m "not notebooks and not dask and not slow and not browser" $(XDIST)

lint: $(STAMP)
	$(VENV)/bin/ruff check topogen tests benchmarks

# Lab serves the repository (the notebooks' ../figures/*.gif images resolve) and opens in notebooks/; a
# MPLBACKEND set in the shell (Agg, say) would turn inline figures into "<Figure size ...>" text, so it is unset.
# The notebooks name the kernel "python3": it is installed into .venv (pointing at .venv's Python) and
# JUPYTER_PATH puts .venv's kernels first, so a user-level "python3" kernel cannot shadow it.
# Kernels talk to the server over local IPC sockets (in Jupyter's runtime folder), not unencrypted TCP ports.
KERNEL_FLAGS = --KernelManager.transport=ipc --KernelManager.ip="$$($(VENV)/bin/jupyter --runtime-dir)/topogen-kernel"

lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (topogen .venv)" >/dev/null
	$(VENV)/bin/jupyter trust notebooks/[0-9][0-9]_*.ipynb >/dev/null  # their outputs are the runner's
	env -u MPLBACKEND JUPYTER_PATH="$(CURDIR)/$(VENV)/share/jupyter" $(VENV)/bin/jupyter lab --ServerApp.root_dir=. \
		--LabApp.default_url=/lab/tree/notebooks $(KERNEL_FLAGS) $(LAB_FLAGS)

lab-check: $(STAMP)
	command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[browser]'
	$(PY) -m pytest -m browser -s tests/test_lab.py

figures: $(STAMP)
	$(PY) -m topogen.reproduce

smoke: $(STAMP)
	$(PY) -m topogen.reproduce --smoke

bench: $(STAMP)
	$(PY) benchmarks/bench_persistence.py
	$(PY) benchmarks/bench_losses.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_notebooks.py

clean-venv:
	rm -rf $(VENV)
