"""Sweeps: parallel and serial runs agree, the cache answers reruns, Dask gives the same results."""

import functools
import os

import numpy as np
import pytest
from conftest import loopback_cluster

from topogen.experiments import ablation
from topogen.experiments.ablation import matched_weights, synthetic_trial
from topogen.reproduce import sweep

CONFIGS = [
    dict(task="four_clusters", weights={"bottleneck0": 1.0}, seed=s, steps_fraction=0.004, snapshots=3)
    for s in (0, 1)
] + [dict(task="circle", weights={"dsigma1": 1.0}, seed=0, steps_fraction=0.002, snapshots=3)]


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        np.testing.assert_array_equal(x["final"], y["final"])
        assert x["end"] == y["end"] and x["start"] == y["start"]


def test_parallel_equals_serial():
    serial = sweep.run_sweep(synthetic_trial, CONFIGS, backend="sequential", cache=False)
    parallel = sweep.run_sweep(synthetic_trial, CONFIGS, n_jobs=2, cache=False)
    _same(serial, parallel)
    assert serial[0]["steps"] == 10 and np.isfinite(serial[0]["ratio"])


def test_cache_answers_a_rerun(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    first = sweep.run_sweep(synthetic_trial, CONFIGS[:1])
    assert any((tmp_path / "joblib").rglob("output.pkl"))
    calls = []
    monkeypatch.setattr("topogen.experiments.deformation.deform", lambda *a, **k: calls.append(1))
    again = sweep.run_sweep(synthetic_trial, CONFIGS[:1])  # from the cache: nothing recomputed
    assert not calls
    _same(first, again)


@pytest.mark.dask
@pytest.mark.xdist_group("dask_cluster")
def test_dask_cluster_gives_the_same_results(dask_address):
    serial = sweep.run_sweep(synthetic_trial, CONFIGS, backend="sequential", cache=False)
    _same(serial, sweep.run_sweep(synthetic_trial, CONFIGS, cache=False, scheduler=dask_address))


def test_bad_sweeps():
    with pytest.raises(ValueError, match="backend"):
        sweep.run_sweep(synthetic_trial, CONFIGS, backend="spark")
    with pytest.raises(ValueError, match="n_jobs"):
        sweep.run_sweep(synthetic_trial, CONFIGS, n_jobs=0)
    with pytest.raises(ValueError, match="dict"):
        sweep.run_sweep(synthetic_trial, [("four_clusters",)])


def test_initial_terms_do_not_depend_on_the_thread_count():
    """Notebook 02 matches its VAE variants' weights to them in the kernel: the same weights at any thread count."""
    import torch

    from topogen.experiments.ablation import initial_terms

    found = []
    for threads in (2, 1):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            found.append(initial_terms(seed=0))
        finally:
            torch.set_num_threads(before)
    assert found[0] == found[1]


def test_matched_weights():
    assert matched_weights({"a": 2.0, "b": 0.5}, 10.0) == {"a": 5.0, "b": 20.0}
    assert matched_weights({"a": 2.0, "b": 0.5}, 10.0, combined=True) == {"a": 2.5, "b": 10.0}
    assert matched_weights({"a": 0.0}, 1.0) == {}


def test_cache_key_follows_the_code(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    sweep.run_sweep(synthetic_trial, CONFIGS[:1])
    sweep.run_sweep(synthetic_trial, CONFIGS[:1])  # unchanged code: one cached result
    assert len(list((tmp_path / "joblib").rglob("output.pkl"))) == 1
    import topogen.reproduce.caching

    real = topogen.reproduce.caching.code_fingerprint
    # as after an edit
    monkeypatch.setattr(topogen.reproduce.caching, "code_fingerprint", lambda *m: real(*m) + "-edited")
    sweep.run_sweep(synthetic_trial, CONFIGS[:1])
    assert len(list((tmp_path / "joblib").rglob("output.pkl"))) == 2  # recomputed, not reused


def test_cache_key_follows_the_libraries(tmp_path, monkeypatch):
    from topogen.reproduce import caching

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    sweep.run_sweep(synthetic_trial, CONFIGS[:1])
    monkeypatch.setattr(caching, "library_versions", lambda: "torch 99")  # as after an upgrade
    sweep.run_sweep(synthetic_trial, CONFIGS[:1])
    assert len(list((tmp_path / "joblib").rglob("output.pkl"))) == 2  # recomputed, not reused


def test_a_function_outside_topogen_is_keyed_by_its_module_source(tmp_path, monkeypatch):
    import importlib
    import sys

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = tmp_path / "user_trials.py"
    module.write_text("def factor():\n    return 2\n\n\ndef trial(x):\n    return x * factor()\n")
    import user_trials

    try:
        assert sweep.run_sweep(user_trials.trial, [{"x": 1}, {"x": 2}]) == [2, 4]
        module.write_text(module.read_text().replace("return 2", "return 3"))  # an edit of a helper it calls
        importlib.reload(user_trials)
        assert sweep.run_sweep(user_trials.trial, [{"x": 1}, {"x": 2}]) == [3, 6]  # recomputed, not the old results
        assert len(list((tmp_path / "cache" / "joblib").rglob("output.pkl"))) == 4
    finally:
        sys.modules.pop("user_trials", None)


def test_a_function_defined_in_a_script_runs_cached_in_worker_processes(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(
        "from topogen.reproduce import run_sweep\n\n\ndef f(x):\n    return x + 1\n\n\n"
        "if __name__ == '__main__':\n    print(run_sweep(f, [{'x': 1}, {'x': 2}], n_jobs=2))\n"
        "    print(run_sweep(f, [{'x': 1}, {'x': 2}], n_jobs=2))\n")
    env = dict(os.environ, TOPOGEN_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[2, 3]", "[2, 3]"]
    assert len(list((tmp_path / "cache" / "joblib").rglob("output.pkl"))) == 2


def test_a_function_without_a_file_is_keyed_by_its_own_source(monkeypatch):
    """A notebook's cell: its module (``__main__`` of the kernel) has no file, the cell's source is in linecache."""
    import linecache
    import sys
    import types

    stamps = []
    for body in ("x + 1", "x + 2"):
        source = f"def cell_trial(x):\n    return {body}\n"
        filename = f"<cell {body}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        module = types.ModuleType("kernel_main")
        monkeypatch.setitem(sys.modules, "kernel_main", module)
        exec(compile(source, filename, "exec"), module.__dict__)
        stamps.append(sweep._code_stamp(module.cell_trial))
        linecache.cache.pop(filename)
    assert stamps[0] != stamps[1]


def test_functions_that_cannot_be_keyed_by_name_are_not_cached():
    def closure(x):
        return x

    with pytest.raises(ValueError, match="cannot cache the results of .*<lambda>.*cache=False"):
        sweep.run_sweep(lambda x: x, [{"x": 1}])
    with pytest.raises(ValueError, match="cannot cache the results of .*<locals>.closure"):
        sweep.run_sweep(closure, [{"x": 1}])
    with pytest.raises(ValueError, match="cannot cache the results of <unnamed>"):
        sweep.run_sweep(functools.partial(matched_weights, reference=1.0), [{"term_values": {"a": 2.0}}])
    assert sweep.run_sweep(lambda x: x + 1, [{"x": 1}], cache=False) == [2]


def test_cluster_addresses():
    with sweep.cluster("") as backend:
        assert backend == "loky"
    for bad in ("localhost:8786", 8786):
        with pytest.raises(ValueError, match="dask_scheduler"):
            with sweep.cluster(bad):
                pass


@pytest.mark.slow
def test_vae_trials_split_into_units_equal_the_whole_trial(tmp_path, monkeypatch):
    from topogen.experiments.ablation import vae_trial, vae_trials

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    # b0 and b01 have no gradient path at the first step: one unit with the VAE; w0 has one: a unit of its own
    variants = {"b0": {"bottleneck0": 15.0}, "b01": {"bottleneck0": 15.0, "bottleneck1": 15.0},
                "w0": {"wasserstein0": 1.0}}
    calls = []
    original = ablation.vae_trial

    @functools.wraps(original)
    def spy(**unit):
        calls.append(sorted(unit["variants"]))
        return original(**unit)

    monkeypatch.setattr(ablation, "vae_trial", spy)
    kwargs = dict(steps=3, eval_at=(2,), n_prior=20)
    (split,) = vae_trials([1], variants, n_jobs=1, cache=False, **kwargs)  # input persistence in the loop
    assert calls == [["b0", "b01"], ["w0"]]
    monkeypatch.setattr(ablation, "vae_trial", original)
    assert not list(tmp_path.glob("inputs-*.pt"))
    whole = vae_trial(1, variants, **kwargs)  # input persistence from its cache (degree 1)
    (cached,) = vae_trials([1], variants, n_jobs=1, cache=True, **kwargs)  # ... the same, and degree 0 for w0
    assert len(list(tmp_path.glob("inputs-*.pt"))) == 2
    assert list(split) == list(whole) == list(cached) == ["vae", "b0", "b01", "w0"]
    for name, res in whole.items():
        for other in (split, cached):
            np.testing.assert_array_equal(other[name]["bce"], res["bce"])
            np.testing.assert_array_equal(other[name]["topo_grad"], res["topo_grad"])
            assert other[name]["evaluations"] == res["evaluations"]
    with pytest.raises(ValueError, match="'vae'"):
        vae_trials([1], {"vae": {"bottleneck0": 1.0}}, **kwargs)


def test_a_spelled_out_default_is_the_same_cached_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    first = sweep.run_sweep(synthetic_trial, CONFIGS[:1])
    calls = []
    monkeypatch.setattr("topogen.experiments.deformation.deform", lambda *a, **k: calls.append(1))
    again = sweep.run_sweep(synthetic_trial, [dict(CONFIGS[0], fallback="dominant", threads=1)])
    assert not calls  # the defaults were spelled out: same unit, answered by the cache
    _same(first, again)


def test_a_default_hyperparameter_spelled_out_is_the_same_cached_run(tmp_path, monkeypatch):
    from topogen.experiments.ablation import without_defaults

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    first = sweep.run_sweep(synthetic_trial, CONFIGS[2:])  # dsigma1 at its default kernel_sigma
    calls = []
    monkeypatch.setattr("topogen.experiments.deformation.deform", lambda *a, **k: calls.append(1))
    again = sweep.run_sweep(synthetic_trial, [dict(CONFIGS[2], loss_kwargs=without_defaults({"kernel_sigma": 0.05}))])
    assert not calls
    _same(first, again)
    assert without_defaults({"kernel_sigma": 0.5, "entropy_delta": 1e-3}) == {"kernel_sigma": 0.5}
    assert without_defaults({}) is None and without_defaults(None) is None
    with pytest.raises(ValueError, match="sigma"):
        without_defaults({"sigma": 0.5})


def test_configurations_that_do_not_fit_the_function_are_named():
    with pytest.raises(ValueError, match="configuration 1 does not fit synthetic_trial.*stepz"):
        sweep.run_sweep(synthetic_trial, [CONFIGS[0], dict(CONFIGS[0], stepz=3)])
    with pytest.raises(ValueError, match="configuration 0 does not fit.*task"):
        sweep.run_sweep(synthetic_trial, [dict(weights={"bottleneck0": 1.0})], cache=False)


@pytest.mark.parametrize("backend", ["sequential", "loky"])
def test_units_run_on_one_core_whatever_the_backend(backend):
    from joblib import effective_n_jobs

    assert sweep.run_sweep(effective_n_jobs, [{}] * 2, n_jobs=2, backend=backend, cache=False) == [1, 1]


@pytest.mark.dask
@pytest.mark.xdist_group("dask_cluster")
def test_units_run_on_one_core_on_dask(dask_address):
    # joblib's Dask backend would hand a unit's own joblib calls (scikit-learn's) back to the cluster
    from joblib import effective_n_jobs

    assert sweep.run_sweep(effective_n_jobs, [{}] * 2, cache=False, scheduler=dask_address) == [1, 1]


class _Bar:
    """Records what run_sweep tells its progress bar."""

    made = []

    def __init__(self, total, desc="", enabled=None):
        self.total, self.desc, self.enabled, self.n = total, desc, enabled, 0
        _Bar.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        self.n += n


@pytest.mark.parametrize("backend", ["sequential", "loky"])
def test_a_bar_counts_the_units_done(backend, monkeypatch):
    from joblib import effective_n_jobs

    monkeypatch.setattr(sweep, "progress_bar", _Bar)
    _Bar.made.clear()
    assert sweep.run_sweep(effective_n_jobs, [{}] * 3, n_jobs=2, backend=backend, cache=False, progress=True) == [1] * 3
    bar = _Bar.made[-1]
    assert (bar.total, bar.n, bar.desc, bar.enabled) == (3, 3, "effective_n_jobs", True)
    sweep.run_sweep(effective_n_jobs, [{}] * 2, n_jobs=2, backend=backend, cache=False)
    assert _Bar.made[-1].enabled is None  # the default: on in Lab and terminals, off under the batch runner


def test_the_bar_is_tqdm_and_silent_in_batch_runs(monkeypatch, capsys):
    from topogen.reproduce.progress import BATCH_ENV, progress_bar

    monkeypatch.setenv(BATCH_ENV, "1")
    with progress_bar(3, "units") as bar:
        bar.update(3)
    assert bar.disable and not capsys.readouterr().err
    with progress_bar(3, "units", enabled=True) as bar:
        bar.update(3)
    assert "units" in capsys.readouterr().err


@pytest.mark.dask
@pytest.mark.xdist_group("dask_cluster")
def test_a_bar_counts_the_units_done_on_dask(dask_address, monkeypatch):
    from joblib import effective_n_jobs

    monkeypatch.setattr(sweep, "progress_bar", _Bar)
    _Bar.made.clear()
    assert sweep.run_sweep(effective_n_jobs, [{}] * 3, cache=False, scheduler=dask_address, progress=True) == [1] * 3
    assert (_Bar.made[-1].total, _Bar.made[-1].n) == (3, 3)


class _Holder:
    """A plain object carrying a large array, as ImageData carries a data set."""

    def __init__(self, values):
        self.values = values


@pytest.mark.dask
@pytest.mark.xdist_group("dask_cluster")
def test_a_large_shared_argument_reaches_the_cluster_once(dask_address):
    # an argument every unit shares is scattered once; otherwise Dask sends it inside every task and warns
    # "Sending large graph" into the notebook
    import warnings

    big = np.arange(2_000_000, dtype=np.float64)  # 16 MB
    for shared in (big, _Holder(big)):  # an array, and an object whose size Dask cannot see
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sums = sweep.run_sweep(_total, [dict(a=shared, k=k) for k in range(3)], cache=False,
                                   scheduler=dask_address)
        assert sums == [big.sum() + k for k in range(3)]
        assert not [w for w in caught if "large graph" in str(w.message)]
    assert sweep._shared([dict(a=big, k=1), dict(a=big, k=2)]) == [big]
    assert sweep._shared([dict(a=big), dict(a=big.copy())]) == []


def _total(a, k: int) -> float:
    return float(np.sum(a.values if isinstance(a, _Holder) else a)) + k


@pytest.mark.dask
def test_a_worker_killed_mid_sweep_changes_nothing(tmp_path, monkeypatch):
    """SIGKILL one of two workers during a cached 16-unit sweep: same results as a local run, no partial entry."""
    import os
    import signal
    import threading

    distributed = pytest.importorskip("distributed")
    units = [dict(task="four_clusters", weights={"bottleneck0": 1.0}, seed=s, steps_fraction=0.04, snapshots=3)
             for s in range(16)]
    local = sweep.run_sweep(synthetic_trial, units, backend="sequential", cache=False)
    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    with loopback_cluster() as cluster, distributed.Client(cluster) as client:
        victim = sorted(client.run(os.getpid).values())[0]
        killer = threading.Timer(1.5, os.kill, (victim, signal.SIGKILL))
        killer.start()
        remote = sweep.run_sweep(synthetic_trial, units, scheduler=cluster.scheduler_address)
        killer.join()
        assert victim not in client.run(os.getpid).values()  # the worker really died (its nanny started another)
    _same(local, remote)
    entries = [p for p in (tmp_path / "joblib").rglob("metadata.json")]
    assert len(entries) == 16 and all((p.parent / "output.pkl").is_file() for p in entries)
    leftovers = [p for p in (tmp_path / "joblib").rglob("*") if p.is_file() and p.name not in
                 {"output.pkl", "metadata.json", "func_code.py"}]
    assert not leftovers
