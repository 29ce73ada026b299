"""Sweeps: parallel and serial runs agree, the cache answers reruns, Dask gives the same results."""

import functools

import numpy as np
import pytest

from topogen import ablation, sweep
from topogen.ablation import matched_weights, synthetic_trial

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
    monkeypatch.setattr("topogen.synthetic.deform", lambda *a, **k: calls.append(1))
    again = sweep.run_sweep(synthetic_trial, CONFIGS[:1])  # from the cache: nothing recomputed
    assert not calls
    _same(first, again)


def test_dask_cluster_gives_the_same_results():
    distributed = pytest.importorskip("distributed")
    serial = sweep.run_sweep(synthetic_trial, CONFIGS, backend="sequential", cache=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster, distributed.Client(cluster):
        remote = sweep.run_sweep(synthetic_trial, CONFIGS, backend="dask", cache=False)
    _same(serial, remote)


def test_bad_sweeps():
    with pytest.raises(ValueError, match="backend"):
        sweep.run_sweep(synthetic_trial, CONFIGS, backend="spark")
    with pytest.raises(ValueError, match="n_jobs"):
        sweep.run_sweep(synthetic_trial, CONFIGS, n_jobs=0)
    with pytest.raises(ValueError, match="dict"):
        sweep.run_sweep(synthetic_trial, [("four_clusters",)])


def test_matched_weights():
    assert matched_weights({"a": 2.0, "b": 0.5}, 10.0) == {"a": 5.0, "b": 20.0}
    assert matched_weights({"a": 2.0, "b": 0.5}, 10.0, combined=True) == {"a": 2.5, "b": 10.0}
    assert matched_weights({"a": 0.0}, 1.0) == {}


def test_cache_key_follows_the_code(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    sweep.run_sweep(synthetic_trial, CONFIGS[:1])
    sweep.run_sweep(synthetic_trial, CONFIGS[:1])  # unchanged code: one cached result
    assert len(list((tmp_path / "joblib").rglob("output.pkl"))) == 1
    import topogen.caching

    real = topogen.caching.code_fingerprint
    monkeypatch.setattr(topogen.caching, "code_fingerprint", lambda *m: real(*m) + "-edited")  # as after an edit
    sweep.run_sweep(synthetic_trial, CONFIGS[:1])
    assert len(list((tmp_path / "joblib").rglob("output.pkl"))) == 2  # recomputed, not reused


def test_cluster_addresses():
    with sweep.cluster("") as backend:
        assert backend == "loky"
    for bad in ("localhost:8786", 8786):
        with pytest.raises(ValueError, match="dask_scheduler"):
            with sweep.cluster(bad):
                pass


def test_vae_trials_split_into_units_equal_the_whole_trial(tmp_path, monkeypatch):
    from topogen.ablation import vae_trial, vae_trials

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
    # Workers find the cache folder in their own environment (on a cluster, their machine's): stop the reusable
    # workers of earlier tests, started before this test's TOPOGEN_CACHE_DIR, so that new ones see it.
    sweep.shutdown()
    (cached,) = vae_trials([1], variants, n_jobs=2, cache=True, **kwargs)  # ... the same, and degree 0 for w0
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
    monkeypatch.setattr("topogen.synthetic.deform", lambda *a, **k: calls.append(1))
    again = sweep.run_sweep(synthetic_trial, [dict(CONFIGS[0], fallback="dominant", threads=1)])
    assert not calls  # the defaults were spelled out: same unit, answered by the cache
    _same(first, again)


def test_a_default_hyperparameter_spelled_out_is_the_same_cached_run(tmp_path, monkeypatch):
    from topogen.ablation import without_defaults

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    first = sweep.run_sweep(synthetic_trial, CONFIGS[2:])  # dsigma1 at its default kernel_sigma
    calls = []
    monkeypatch.setattr("topogen.synthetic.deform", lambda *a, **k: calls.append(1))
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


CALLS = []


def _record(x: int) -> int:
    CALLS.append(x)
    return 10 * x


def test_costly_units_start_first_and_results_keep_their_order():
    CALLS.clear()
    configs = [dict(x=i) for i in range(5)]
    out = sweep.run_sweep(_record, configs, backend="sequential", cache=False, cost=[1.0, 5.0, 0.0, 5.0, 2.0])
    assert out == [0, 10, 20, 30, 40]  # in the order of the configurations
    assert CALLS == [1, 3, 4, 0, 2]  # executed by decreasing cost, ties in their order
    CALLS.clear()
    assert sweep.run_sweep(_record, configs, backend="sequential", cache=False, cost=lambda c: -c["x"] % 3) == out
    assert CALLS == [1, 4, 2, 0, 3]
    CALLS.clear()
    assert sweep.run_sweep(_record, configs, backend="sequential", cache=False) == out
    assert CALLS == [0, 1, 2, 3, 4]


def test_longest_first_gives_the_same_results_in_parallel():
    from topogen.synthetic import relative_cost

    costs = [relative_cost(c["task"], c["steps_fraction"], c["weights"]) for c in CONFIGS]
    assert costs[2] > costs[0] == costs[1]  # circle: more steps than four_clusters at these fractions
    serial = sweep.run_sweep(synthetic_trial, CONFIGS, backend="sequential", cache=False)
    _same(serial, sweep.run_sweep(synthetic_trial, CONFIGS, n_jobs=2, cache=False, cost=costs))


@pytest.mark.parametrize("cost, message", [([1.0, 2.0], "one number per configuration"),
                                           ([1.0, float("nan"), 1.0], "configuration 1"),
                                           ([1.0, 1.0, -2.0], "configuration 2"),
                                           ([1.0, "a", 1.0], "configuration 1"),
                                           ([True, 1.0, 1.0], "configuration 0")])
def test_bad_costs_are_named(cost, message):
    with pytest.raises(ValueError, match=message):
        sweep.run_sweep(synthetic_trial, CONFIGS, backend="sequential", cache=False, cost=cost)


def test_relative_cost_orders_the_experiments_as_their_times_do():
    from topogen.synthetic import ALL_EXPERIMENTS, relative_cost

    # measured in notebook 01 (full steps): ball_to_sphere 25.7 s > three_clusters 18.2 s > circle 17.4 s
    # > four_clusters 4.1 s
    ranked = sorted(ALL_EXPERIMENTS, key=relative_cost, reverse=True)
    assert ranked == ["ball_to_sphere", "three_clusters", "circle", "four_clusters"]
    assert relative_cost("circle", 0.5) == relative_cost("circle") / 2


def test_fallback_trials_share_only_identical_runs(monkeypatch):
    units = [dict(task=t, weights={"bottleneck0": 1.0, "bottleneck1": 1.0}, seed=0, steps_fraction=f, snapshots=3,
                  fallback=r) for r in ("step", "dominant", "term", "none") for t, f in (("three_clusters", 0.01),
                                                                                        ("circle", 0.01))]
    alone = [synthetic_trial(**u) for u in units]
    calls = []
    counted = functools.wraps(synthetic_trial)(lambda **k: calls.append(k["fallback"]) or synthetic_trial(**k))
    monkeypatch.setattr(ablation, "synthetic_trial", counted)
    shared = ablation.fallback_trials(units, cache=False)
    _same(alone, [{**r, "ms_per_step": a["ms_per_step"]} for r, a in zip(shared, alone, strict=True)])
    for a, b, u in zip(alone, shared, units, strict=True):
        assert b["fallback"] == u["fallback"] and a["ratio"] == b["ratio"] and a["same_as"] == b["same_as"]
        assert a["fallback_steps"] == b["fallback_steps"] and a["features_end"] == b["features_end"]
    # dominant first per task; three clusters: step and none are its run, circle: term is
    assert sorted(calls) == sorted(["dominant", "dominant", "term", "step", "none"])
    assert ablation.fallback_trials([], cache=False) == []


@pytest.mark.parametrize("backend", ["sequential", "loky", "dask"])
def test_units_run_on_one_core_whatever_the_backend(backend):
    # joblib's Dask backend would hand a unit's own joblib calls (scikit-learn's) back to the cluster
    from joblib import effective_n_jobs

    if backend != "dask":
        assert sweep.run_sweep(effective_n_jobs, [{}] * 2, n_jobs=2, backend=backend, cache=False) == [1, 1]
        return
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster, distributed.Client(cluster):
        assert sweep.run_sweep(effective_n_jobs, [{}] * 2, backend="dask", cache=False) == [1, 1]


def test_runner_priority_reaches_dask(monkeypatch):
    distributed = pytest.importorskip("distributed")
    from topogen.paths import PRIORITY_ENV

    seen = []
    submit = distributed.Client.submit

    def recording(self, *args, **kwargs):
        seen.append(kwargs.get("priority", 0))
        return submit(self, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "submit", recording)
    serial = sweep.run_sweep(synthetic_trial, CONFIGS, backend="sequential", cache=False)
    monkeypatch.setenv(PRIORITY_ENV, "-2")  # what the runner gives notebook 02
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster, distributed.Client(cluster):
        _same(serial, sweep.run_sweep(synthetic_trial, CONFIGS, backend="dask", cache=False))
        assert seen and set(seen[1:]) == {-2}  # every unit (after joblib's probe task) at the notebook's priority
        monkeypatch.setenv(PRIORITY_ENV, "first")
        with pytest.raises(ValueError, match="TOPOGEN_DASK_PRIORITY must be an integer"):
            sweep.run_sweep(synthetic_trial, CONFIGS, backend="dask", cache=False)


def test_a_large_argument_reaches_the_cluster_once():
    # joblib's Dask backend scatters a large argument once for all units; inside a dict it would travel in every task
    # (and Dask warns "Sending large graph" into the notebook)
    import warnings

    distributed = pytest.importorskip("distributed")
    big = np.arange(2_000_000, dtype=np.float64)  # 16 MB
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster, distributed.Client(cluster):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sums = sweep.run_sweep(np.sum, [dict(a=big)] * 3, backend="dask", cache=False)
    assert sums == [big.sum()] * 3
    assert not [w for w in caught if "large graph" in str(w.message)]
