"""Latent-quality measures of Topological Autoencoders, against brute-force loops and scikit-learn."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.manifold import trustworthiness

from topogen.experiments.latent import neighbour_ranks, topoae_metrics


def brute_mrre(x, z, k):
    """MRRE written as loops over points and neighbours (Lee & Verleysen, 2009)."""
    n = len(x)
    dx, dz = cdist(x, x), cdist(z, z)

    def rank(d, i, j):
        return int(np.sum(d[i] < d[i, j]) - 0)  # self (distance 0) counts as rank 0

    xz = zx = 0.0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            rx, rz = rank(dx, i, j), rank(dz, i, j)
            if rx <= k:
                xz += abs(rx - rz) / rx
            if rz <= k:
                zx += abs(rx - rz) / rz
    h = n * sum(abs(n - 2 * rank) / rank for rank in range(1, k + 1))
    return xz / h, zx / h


def brute_kl(x, z, sigma):
    dx, dz = cdist(x, x), cdist(z, z)
    dx, dz = dx / dx.max(), dz / dz.max()
    fx = np.array([sum(np.exp(-dx[i, j] ** 2 / sigma) for j in range(len(x))) for i in range(len(x))])
    fz = np.array([sum(np.exp(-dz[i, j] ** 2 / sigma) for j in range(len(z))) for i in range(len(z))])
    p, q = fx / fx.sum(), fz / fz.sum()
    return float(sum(pi * np.log(pi / qi) for pi, qi in zip(p, q, strict=True)))


@pytest.fixture
def embedding(rng):
    x = rng.normal(size=(60, 8))
    z = x[:, :2] + 0.3 * rng.normal(size=(60, 2))  # a lossy 2-D view
    return x, z


def test_against_brute_force_and_sklearn(embedding):
    x, z = embedding
    out = topoae_metrics(x, z, k=5)
    assert out["trust"] == pytest.approx(trustworthiness(x, z, n_neighbors=5), abs=1e-12)
    assert out["cont"] == pytest.approx(trustworthiness(z, x, n_neighbors=5), abs=1e-12)
    xz, zx = brute_mrre(x, z, 5)
    assert out["mrre_xz"] == pytest.approx(xz, rel=1e-12) and out["mrre_zx"] == pytest.approx(zx, rel=1e-12)
    assert out["mrre"] == pytest.approx((xz + zx) / 2)
    for sigma in (0.01, 0.1, 1.0):
        assert out[f"kl_{sigma:g}"] == pytest.approx(brute_kl(x, z, sigma), rel=1e-9)
    dx, dz = cdist(x, x) / cdist(x, x).max(), cdist(z, z) / cdist(z, z).max()
    iu = np.triu_indices(60, 1)
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((dx[iu] - dz[iu]) ** 2)))


def test_perfect_and_poor_embeddings(embedding, rng):
    x, _ = embedding
    same = topoae_metrics(x, 2.5 * x)  # a rescaled copy preserves everything
    assert same["trust"] == 1.0 and same["cont"] == 1.0 and same["mrre"] == 0.0
    assert same["rmse"] == pytest.approx(0.0, abs=1e-12) and same["kl_0.1"] == pytest.approx(0.0, abs=1e-12)
    poor = topoae_metrics(x, rng.normal(size=(60, 2)))
    good = topoae_metrics(x, x[:, :2])
    assert poor["trust"] < good["trust"] and poor["mrre"] > good["mrre"] and poor["kl_0.1"] > good["kl_0.1"]


def test_ranks():
    d = cdist(np.array([[0.0], [1.0], [3.0]]), np.array([[0.0], [1.0], [3.0]]))
    np.testing.assert_array_equal(neighbour_ranks(d), [[0, 1, 2], [1, 0, 2], [2, 1, 0]])


def test_bad_input(embedding):
    x, z = embedding
    with pytest.raises(ValueError, match="same rows"):
        topoae_metrics(x, z[:10])
    with pytest.raises(ValueError, match="2k \\+ 2"):
        topoae_metrics(x[:10], z[:10], k=5)
    with pytest.raises(ValueError, match="finite"):
        topoae_metrics(np.full_like(x, np.nan), z)
    with pytest.raises(ValueError, match="sigmas"):
        topoae_metrics(x, z, sigmas=(0.0,))


def test_parallel_evaluation_and_tsne_equal_the_serial_calls():
    from sklearn.decomposition import PCA

    from topogen.experiments.latent import _pca_init, _tsne, evaluate_latents, latent_metrics, tsne_embeddings

    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 12)
    inputs = rng.normal(size=(36, 20)) + labels[:, None]
    latents = [inputs[:, :2] + rng.normal(scale=s, size=(36, 2)) for s in (0.1, 1.0, 3.0)]
    # the units use each function's defaults, as notebook 04 does
    serial = [{**latent_metrics(z, labels, inputs=inputs, seed=1), **topoae_metrics(inputs, z)} for z in latents]
    for n_jobs in (1, 2):
        assert evaluate_latents(latents, labels, inputs, seed=1, n_jobs=n_jobs) == serial
    assert evaluate_latents([], labels, inputs) == []
    maps = tsne_embeddings(latents[:2], perplexity=5.0, seed=2, n_jobs=2)
    for z, emb in zip(latents[:2], maps, strict=True):
        np.testing.assert_array_equal(emb, _tsne(z, 5.0, 2))  # a worker's map is this process's
        # the initialization is scikit-learn's init="pca" up to rounding (principal components, PC1's std 1e-4)
        pcs = PCA(n_components=2, random_state=2).fit_transform(z).astype(np.float32)
        np.testing.assert_allclose(np.abs(_pca_init(z, 2)), np.abs(pcs / np.std(pcs[:, 0]) * 1e-4), rtol=1e-4,
                                   atol=1e-9)


@pytest.mark.slow
@pytest.mark.dask
@pytest.mark.xdist_group("dask_cluster")  # with the other tests on the shared cluster
def test_tsne_maps_are_the_same_in_every_process(dask_address):
    """The same input gives the same map in this process and, call after call, in the workers of a Dask cluster
    (scikit-learn's float32 PCA scaling once gave a worker's second call a different map)."""
    from topogen.experiments.latent import tsne_embeddings

    rng = np.random.default_rng(5)
    latents = [rng.normal(size=(300, 10)).astype(np.float32) + k for k in range(2)]  # 4 calls, 2 workers
    from topogen.experiments.latent import _tsne

    here = [_tsne(z, 30.0, 0) for z in latents]
    for _ in range(2):
        maps = tsne_embeddings(latents, scheduler=dask_address)
        for a, b in zip(here, maps, strict=True):
            np.testing.assert_array_equal(a, b)
