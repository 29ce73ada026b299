"""The benchmark scripts import (they print times and assert none; a renamed import should not go unnoticed)."""

import importlib.util
import os
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("bench_*.py")))
def test_benchmark_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(os, "environ", dict(os.environ))  # a script may set defaults before NumPy loads
    spec = importlib.util.spec_from_file_location(f"bench_{script[:-3]}", BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # module level only: main() runs under __main__
    assert callable(module.main)


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu():
    """benchmarks/gpu_check.py on the CPU (what CI has): every check runs and agrees with itself."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--n", "48",
                           "--steps", "4"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all values agree" in done.stdout and "signature1" in done.stdout and "TopoVAE steps" in done.stdout


def test_ratio_interval_resamples_the_rounds_together(monkeypatch):
    """A machine slowing down mid-run moves both callables of a round: the ratio stays exact."""
    import numpy as np

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from _common import ratio_interval

    drift = np.linspace(1.0, 3.0, 30)  # the machine gets three times slower over the run
    assert ratio_interval(0.5 * drift, drift) == (0.5, 0.5, 0.5)
    rng = np.random.default_rng(0)
    ratio, low, high = ratio_interval(0.9 * drift * rng.lognormal(0, 0.05, 30), drift * rng.lognormal(0, 0.05, 30))
    assert low < ratio < high and high < 1.0 and abs(ratio - 0.9) < 0.05
    ratio, low, high = ratio_interval(rng.lognormal(0, 0.3, 30), rng.lognormal(0, 0.3, 30))
    assert low < 1.0 < high  # two draws of the same: parity
