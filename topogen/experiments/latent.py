"""How a latent space relates to its inputs: organization by class, and the measures of Topological Autoencoders.

* :func:`latent_metrics` — organization by class measured in the latent space
  itself (silhouette, cross-validated k-NN accuracy) and trustworthiness;
* :func:`topoae_metrics` — the latent-quality measures of Moor et al.,
  "Topological Autoencoders" (ICML 2020), between an input batch and its
  latents, written from their definitions: the density divergence KL_σ,
  trustworthiness and continuity, the mean relative rank error (Lee &
  Verleysen, 2009) and the RMSE of normalized pairwise distances;
* :func:`evaluate_latents` and :func:`tsne_embeddings` — both measures, and
  t-SNE maps, for many latent sets at once, as parallel units of
  :func:`topogen.reproduce.sweep.run_sweep` (identical values wherever they run).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform

__all__ = ["LATENT_METRICS", "latent_metrics", "TOPOAE_METRICS", "topoae_metrics", "neighbour_ranks",
           "evaluate_latents", "tsne_embeddings"]


#: Latent-space metrics, how to read them, and whether larger is better.
LATENT_METRICS = {
    "silhouette": ("silhouette score of the classes in latent space", True),
    "knn_accuracy": ("5-NN accuracy in latent space (5-fold CV)", True),
    "trustworthiness": ("trustworthiness of the latent space w.r.t. pixels (k = 5)", True),
}


def latent_metrics(latents, labels, inputs=None, *, k: int = 5, folds: int = 5, seed: int = 0) -> dict:
    """How well classes are organized in a latent space, measured in that space.

    Parameters
    ----------
    latents : (n, d) array
    labels : (n,) int array
    inputs : (n, D) array, optional
        The inputs, for trustworthiness (skipped when None).
    k : int
        Neighbours for the k-NN classifier and trustworthiness.
    folds : int
        Stratified, shuffled cross-validation folds (seeded).

    Returns
    -------
    dict
        ``silhouette`` (Euclidean, by class), ``knn_accuracy`` (mean CV
        accuracy) and, with ``inputs``, ``trustworthiness``.
    """
    from sklearn.manifold import trustworthiness
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    z = np.asarray(latents, dtype=np.float64).reshape(len(latents), -1)
    y = np.asarray(labels).ravel()
    if len(z) != len(y) or len(np.unique(y)) < 2:
        raise ValueError("need one label per latent and at least two classes")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    out = {
        "silhouette": float(silhouette_score(z, y)),
        "knn_accuracy": float(cross_val_score(KNeighborsClassifier(n_neighbors=k), z, y, cv=cv).mean()),
    }
    if inputs is not None:
        x = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
        out["trustworthiness"] = float(trustworthiness(x, z, n_neighbors=k))
    return out


#: The measures of Topological Autoencoders (Moor et al., 2020), how to read them, and whether larger is better.
TOPOAE_METRICS = {
    "kl_0.01": ("density divergence KL_σ, σ = 0.01", False),
    "kl_0.1": ("density divergence KL_σ, σ = 0.1", False),
    "kl_1": ("density divergence KL_σ, σ = 1", False),
    "trust": ("trustworthiness (k = 10)", True),
    "cont": ("continuity (k = 10)", True),
    "mrre": ("mean relative rank error (k = 10, both directions)", False),
    "rmse": ("RMSE of normalized pairwise distances", False),
}


def neighbour_ranks(distances: np.ndarray) -> np.ndarray:
    """``r[i, j]``: rank of j among i's neighbours (1 = nearest; ties by index; ``r[i, i] = 0``)."""
    d = np.array(distances, dtype=np.float64)
    n = len(d)
    np.fill_diagonal(d, -np.inf)  # self first, rank 0
    order = np.argsort(d, axis=1, kind="stable")
    ranks = np.empty_like(order)
    ranks[np.arange(n)[:, None], order] = np.arange(n)[None, :]
    return ranks


def _trust(r_high: np.ndarray, r_low: np.ndarray, k: int) -> float:
    """Trustworthiness of the low-dimensional ranks w.r.t. the high-dimensional ones (Venna & Kaski)."""
    n = len(r_high)
    intruders = (r_low <= k) & (r_low > 0) & (r_high > k)  # k-NN in the embedding, not in the input
    penalty = np.sum((r_high - k)[intruders])
    return float(1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty)


def _mrre(r_ref: np.ndarray, r_other: np.ndarray, k: int) -> float:
    """MRRE over the k-NN of ``r_ref``: Σ |r_ref − r_other| / r_ref, normalized to [0, 1]."""
    n = len(r_ref)
    near = (r_ref <= k) & (r_ref > 0)
    total = np.sum(np.abs(r_ref - r_other)[near] / r_ref[near])
    scale = n * np.sum(np.abs(n - 2.0 * np.arange(1, k + 1)) / np.arange(1, k + 1))
    return float(total / scale)


def _density_kl(dx: np.ndarray, dz: np.ndarray, sigma: float) -> float:
    """KL(f_X^σ || f_Z^σ) of the normalized densities f(i) = Σ_j exp(−d(i, j)² / σ)."""
    fx = np.exp(-(dx**2) / sigma).sum(axis=1)
    fz = np.exp(-(dz**2) / sigma).sum(axis=1)
    p, q = fx / fx.sum(), fz / fz.sum()
    return float(np.sum(p * (np.log(p) - np.log(q))))


def _compute_geometry(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances divided by the largest one, and neighbour ranks, of ``(n, D)`` points."""
    d = squareform(pdist(points))
    m = d.max()
    return d / (m if m > 0 else 1.0), neighbour_ranks(d)


def topoae_metrics(inputs, latents, *, k: int = 10, sigmas=(0.01, 0.1, 1.0)) -> dict:
    """The latent-quality measures of Topological Autoencoders between inputs and their latents.

    Parameters
    ----------
    inputs : (n, D) array
        The input points (e.g. test images as pixel vectors).
    latents : (n, d) array
        Their latent codes, row i encoding row i of ``inputs``.
    k : int
        Neighbourhood size of trustworthiness, continuity and MRRE.
    sigmas : sequence of float
        Length scales of the density divergence KL_σ.

    Returns
    -------
    dict
        ``kl_<σ>`` for each σ (e.g. ``kl_0.01``), ``trust``, ``cont``,
        ``mrre`` (the mean of MRRE_X→Z and MRRE_Z→X; both also as
        ``mrre_xz`` and ``mrre_zx``) and ``rmse``.

    Notes
    -----
    Distances are Euclidean; for KL_σ and the RMSE each distance matrix is
    divided by its largest entry, as in Moor et al. Trustworthiness follows
    Venna & Kaski (equal to :func:`sklearn.manifold.trustworthiness`),
    continuity is trustworthiness with the roles of the two spaces swapped,
    and the MRRE is normalized by ``n Σ_{l≤k} |n − 2l| / l`` (Lee &
    Verleysen, 2009).

    Raises
    ------
    ValueError
        Different numbers of rows, fewer than ``2k + 2`` points, non-finite
        values, or a bad ``k``/``sigmas``.
    """
    x = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
    z = np.asarray(latents, dtype=np.float64).reshape(len(latents), -1)
    if len(x) != len(z):
        raise ValueError(f"inputs and latents must have the same rows, got {len(x)} and {len(z)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or len(x) < 2 * k + 2:
        raise ValueError(f"k must be a positive integer with at least 2k + 2 points, got k={k!r} for {len(x)} points")
    if not (np.isfinite(x).all() and np.isfinite(z).all()):
        raise ValueError("inputs and latents must be finite")
    sigmas = tuple(float(s) for s in sigmas)
    if not sigmas or any(not np.isfinite(s) or s <= 0 for s in sigmas):
        raise ValueError(f"sigmas must be positive, got {sigmas!r}")
    nx, rx = _compute_geometry(x)
    nz, rz = _compute_geometry(z)
    out = {f"kl_{s:g}": _density_kl(nx, nz, s) for s in sigmas}
    out["trust"] = _trust(rx, rz, k)
    out["cont"] = _trust(rz, rx, k)
    out["mrre_xz"] = _mrre(rx, rz, k)
    out["mrre_zx"] = _mrre(rz, rx, k)
    out["mrre"] = (out["mrre_xz"] + out["mrre_zx"]) / 2
    iu = np.triu_indices(len(x), 1)
    out["rmse"] = float(np.sqrt(np.mean((nx[iu] - nz[iu]) ** 2)))
    return out


def _evaluate_unit(latents, labels, inputs, seed: int) -> dict:
    """One unit of :func:`evaluate_latents` (module level, so that workers can import it)."""
    return {**latent_metrics(latents, labels, inputs=inputs, seed=seed), **topoae_metrics(inputs, latents)}


def evaluate_latents(latents, labels, inputs, *, seed: int = 0, n_jobs: int = 1, scheduler: str = "") -> list[dict]:
    """:func:`latent_metrics` and :func:`topoae_metrics` of many latent sets of the same inputs, in parallel.

    Parameters
    ----------
    latents : sequence of (n, d) arrays
        Latent codes of the same ``n`` inputs (e.g. each model's test latent means).
    labels : (n,) int array
    inputs : (n, D) array
    seed : int
        Seeds the cross-validation folds of :func:`latent_metrics`.
    n_jobs, scheduler
        Workers of :func:`topogen.reproduce.sweep.run_sweep` (one latent set
        per unit) or a Dask scheduler's address.

    Returns
    -------
    list of dict
        Per latent set, the keys of both functions (they do not overlap).
    """
    from ..reproduce.sweep import run_sweep

    units = [dict(latents=z, labels=labels, inputs=inputs, seed=seed) for z in latents]
    return run_sweep(_evaluate_unit, units, n_jobs=n_jobs, cache=False, scheduler=scheduler)


def _pca_init(x: np.ndarray, seed: int) -> np.ndarray:
    """A PCA initialization for TSNE that is the same in every process.

    Like scikit-learn's ``init="pca"``: the first two principal components
    in float32, scaled so that the first has standard deviation 1e-4. Two
    of its steps gave the same input different bits in one Dask worker
    (its exact PCA's ``X.T @ X``, a long BLAS reduction, and its float32
    standard deviation of a strided column), and t-SNE amplifies a last-bit
    difference into a different map. Here the components come from the
    seeded randomized solver and the scale is taken in float64 on a
    contiguous copy: the same maps in this process, in joblib workers and in
    every call on a Dask worker (tested).
    """
    from sklearn.decomposition import PCA

    pcs = PCA(n_components=2, svd_solver="randomized", random_state=seed).fit_transform(x).astype(np.float32)
    return (pcs / np.ascontiguousarray(pcs[:, 0], dtype=np.float64).std() * 1e-4).astype(np.float32)


def _tsne(latents, perplexity: float, seed: int) -> np.ndarray:
    """One unit of :func:`tsne_embeddings`: TSNE from :func:`_pca_init`."""
    from sklearn.manifold import TSNE

    x = np.asarray(latents)
    x = np.ascontiguousarray(x, dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float64)
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init=_pca_init(x, seed)).fit_transform(x)


def tsne_embeddings(latents, *, perplexity: float = 30.0, seed: int = 0, n_jobs: int = 1,
                    scheduler: str = "") -> list[np.ndarray]:
    """2-D t-SNE maps (PCA-initialized, seeded) of several latent sets, one sweep unit each.

    Returns one ``(n, 2)`` embedding per latent set: scikit-learn's TSNE
    (``random_state=seed``) from its PCA initialization computed reproducibly
    (see ``_tsne``), the same maps in this process, in joblib workers and on
    a Dask cluster.
    """
    from ..reproduce.sweep import run_sweep

    units = [dict(latents=z, perplexity=float(perplexity), seed=int(seed)) for z in latents]
    return run_sweep(_tsne, units, n_jobs=n_jobs, cache=False, scheduler=scheduler)
