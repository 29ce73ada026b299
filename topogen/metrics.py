"""Numbers for "quality and diversity" of a VAE, and paired statistics over seeds.

* test BCE per image (reconstruction from the posterior mean);
* quality: accuracy of a small CNN classifier on reconstructions of test images;
* diversity: entropy of the classifier's predicted-class histogram on images
  decoded from the prior N(0, I), and the Fréchet distance between classifier
  features (penultimate layer) of real test images and of prior samples;
* statistics: mean with a t-based 95% CI, paired differences with their CI and
  a paired t-test.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg, stats

from .models import Classifier
from .paths import cache_dir

__all__ = [
    "frechet_distance",
    "prediction_entropy",
    "train_classifier",
    "load_classifier",
    "Evaluator",
    "mean_ci",
    "paired_difference",
    "METRICS",
    "evaluation_table",
    "LATENT_METRICS",
    "latent_metrics",
]


# ----------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------
def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    ``|μa - μb|² + Tr(Σa + Σb - 2 (Σa Σb)^½)``; rows are samples.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need two (n, d) feature sets with n >= 2 and the same d, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():  # nearly singular product: regularize
            eps = 1e-6 * np.eye(len(cov_a))
            covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))
    return max(value, 0.0)


def prediction_entropy(labels, n_classes: int = 10) -> float:
    """Entropy (nats) of the histogram of predicted classes; log(n_classes) is uniform."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    if labels.size == 0:
        raise ValueError("no predictions")
    p = np.bincount(labels, minlength=n_classes) / labels.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# ----------------------------------------------------------------------------
# the classifier (trained once per data set, cached)
# ----------------------------------------------------------------------------
def _data_key(data, epochs: int, seed: int) -> str:
    h = hashlib.sha256()
    h.update(data.train_x[:64].numpy().tobytes())
    h.update(data.train_y.numpy().tobytes())
    return f"classifier-{data.dataset}-{data.source}-{len(data.train_x)}-e{epochs}-s{seed}-{h.hexdigest()[:12]}"


def train_classifier(data, epochs: int = 4, seed: int = 0, batch_size: int = 64) -> Classifier:
    """Train :class:`~topogen.models.Classifier` on the training split (Adam, lr 1e-3)."""
    torch.manual_seed(seed)
    model = Classifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    n = len(data.train_x)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def load_classifier(data, epochs: int = 4, seed: int = 0, cache: bool = True, verbose: bool = True) -> Classifier:
    """The classifier for ``data``: loaded from the cache (``weights_only=True``) or trained and cached."""
    path = cache_dir() / f"{_data_key(data, epochs, seed)}.pt"
    model = Classifier()
    if cache and path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        origin = "cached"
    else:
        model = train_classifier(data, epochs, seed)
        if cache:
            tmp = path.with_suffix(".tmp")
            torch.save(model.state_dict(), tmp)
            tmp.replace(path)
        origin = "trained"
    if verbose:
        with torch.no_grad():
            acc = (model(data.test_x).argmax(1) == data.test_y).float().mean().item()
        print(f"classifier ({origin}): test accuracy {acc:.3f} on {len(data.test_x)} real test images")
    return model


# ----------------------------------------------------------------------------
# evaluating a VAE
# ----------------------------------------------------------------------------
@dataclass
class Evaluator:
    """Evaluates a VAE on the test split with a fixed classifier and fixed prior samples.

    Parameters
    ----------
    data : ImageData
    classifier : Classifier
    n_prior : int
        Images decoded from the prior for the diversity metrics.
    seed : int
        Seeds the prior samples (identical for every model).
    grid : int
        Number of test images whose reconstructions are kept (image grids):
        the first test image of each class in turn, so a grid shows every digit.
    """

    data: object
    classifier: Classifier
    n_prior: int = 1000
    seed: int = 0
    grid: int = 10

    def __post_init__(self):
        with torch.no_grad():
            self._real_features = self.classifier.features(self.data.test_x).numpy()
        self._prior_seed = self.seed
        labels = self.data.test_y.numpy()
        firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
        rest = [i for i in range(len(labels)) if i not in set(firsts)]
        #: Test-image indices shown in grids (one per class first).
        self.grid_index = (firsts + rest)[: self.grid]

    @property
    def key(self) -> str:
        """Identifies what this evaluator records (part of training cache keys)."""
        return f"eval-v2-prior{self.n_prior}-seed{self.seed}-grid{self.grid}"

    def __call__(self, model) -> dict:
        """Metrics of ``model`` (put in eval mode for the call) and reconstructions for grids."""
        was_training = model.training
        model.eval()
        x, y = self.data.test_x, self.data.test_y
        with torch.no_grad():
            mu, _ = model.encode(x)
            recon = model.decode(mu)
            bce = F.binary_cross_entropy(recon, x, reduction="sum").item() / len(x)
            accuracy = (self.classifier(recon).argmax(1) == y).float().mean().item()
            gen = torch.Generator().manual_seed(self._prior_seed)
            z = torch.randn(self.n_prior, model.latent_dim, generator=gen)
            samples = model.decode(z)
            pred = self.classifier(samples).argmax(1).numpy()
            feats = self.classifier.features(samples).numpy()
        model.train(was_training)
        return {
            "test_bce": bce,
            "recon_accuracy": accuracy,
            "prior_entropy": prediction_entropy(pred),
            "prior_fid": frechet_distance(self._real_features, feats),
            "recon_grid": recon[self.grid_index].numpy(),
            "test_mu": mu.numpy(),
            "prior_grid": samples[: self.grid].numpy(),
        }


#: Metric names, how to read them, and whether larger is better.
METRICS = {
    "test_bce": ("test BCE per image", False),
    "recon_accuracy": ("classifier accuracy on reconstructions", True),
    "prior_entropy": ("entropy of predicted classes, prior samples (max ln 10 = 2.303)", True),
    "prior_fid": ("Fréchet distance, classifier features, prior samples vs test", False),
}


# ----------------------------------------------------------------------------
# statistics over seeds
# ----------------------------------------------------------------------------
def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t-based confidence interval (0 for one value)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("no values")
    if v.size == 1:
        return float(v[0]), 0.0
    half = stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def paired_difference(a, b, confidence: float = 0.95) -> dict:
    """Paired comparison of ``a - b`` over seeds: mean, CI half-width, paired t-test p-value.

    With fewer than two pairs, or identical pairs, the p-value is NaN.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired samples must have the same non-zero length, got {a.size} and {b.size}")
    diff = a - b
    mean, half = mean_ci(diff, confidence)
    if a.size < 2 or np.allclose(diff, diff[0]):
        p = float("nan")
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"diff": mean, "ci": half, "p": p, "n": int(a.size)}


# ----------------------------------------------------------------------------
# organisation of a latent space by class
# ----------------------------------------------------------------------------
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


def evaluation_table(runs: list, models, reference: str = "vae", metrics=None, steps=None):
    """Metrics over seeds as a long table: mean ± CI per model, paired difference vs ``reference``.

    Parameters
    ----------
    runs : list of dict
        One ``{model: RunLog}`` per seed (paired runs).
    models : sequence of str
    reference : str
        The model the others are compared with, seed by seed.
    metrics : sequence of str, optional
        Default: every key of :data:`METRICS`.
    steps : sequence of int, optional
        Evaluation steps to include (default: all).

    Returns
    -------
    pandas.DataFrame
        Columns: step, metric, model, mean, ci, diff, diff_ci, p, n.
    """
    import pandas as pd

    metrics = list(metrics or METRICS)
    steps = sorted(steps or runs[0][reference].evaluations)
    rows = []
    for step in steps:
        for metric in metrics:
            ref = [r[reference].evaluations[step][metric] for r in runs]
            for model in models:
                vals = [r[model].evaluations[step][metric] for r in runs]
                mean, ci = mean_ci(vals)
                row = {"step": step, "metric": metric, "model": model, "mean": mean, "ci": ci, "n": len(vals)}
                if model != reference:
                    pd_ = paired_difference(vals, ref)
                    row.update(diff=pd_["diff"], diff_ci=pd_["ci"], p=pd_["p"])
                rows.append(row)
    return pd.DataFrame(rows)
