"""Numbers for "quality and diversity" of a VAE, measured model by model.

* test BCE per image (reconstruction from the posterior mean);
* quality: accuracy of a small CNN classifier on reconstructions of test images;
* diversity: entropy of the classifier's predicted-class histogram on images
  decoded from the prior N(0, I), and the Fréchet distance between classifier
  features (penultimate layer) of real test images and of prior samples;
* topological fidelity: bottleneck and Wasserstein distances (degrees 0 and 1)
  between the diagram of a batch of reconstructions (or of prior samples) and
  the diagram of a real test batch of the same size, the quantity TopoVAE is
  trained to lower.

Statistics over seeds live in :mod:`topogen.experiments.stats`.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

from ..reproduce.paths import cache_dir
from .models import Classifier

__all__ = [
    "frechet_distance",
    "prediction_entropy",
    "train_classifier",
    "load_classifier",
    "Evaluator",
    "METRICS",
    "TOPO_METRICS",
    "topological_fidelity",
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
    """The classifier's cache name: its data, epochs and seed, the libraries' versions and the code that trains it."""
    from ..reproduce.caching import code_fingerprint, library_versions

    h = hashlib.sha256()
    h.update(data.checksum.encode())
    h.update(library_versions().encode())
    h.update(code_fingerprint("experiments.metrics").encode())  # the training loop, and the model it imports
    return f"classifier-{data.dataset}-{data.source}-{len(data.train_x)}-e{epochs}-s{seed}-{h.hexdigest()[:12]}"


def train_classifier(data, epochs: int = 4, seed: int = 0, batch_size: int = 64) -> Classifier:
    """Train :class:`~topogen.experiments.models.Classifier` on the training split (Adam, lr 1e-3).

    Trained with one torch thread whatever the caller's setting, so the cached
    weights are the same whichever process trains them first.
    """
    from ..reproduce.caching import fixed_threads

    with fixed_threads(1):
        return _train_classifier(data, epochs, seed, batch_size)


def _train_classifier(data, epochs: int, seed: int, batch_size: int) -> Classifier:
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
    from ..reproduce import caching

    path = cache_dir() / f"{_data_key(data, epochs, seed)}.pt"
    model = Classifier()
    state = caching.load(path) if cache else None
    if state is not None:
        model.load_state_dict(state)
        model.eval()
        origin = "cached"
    else:
        model = train_classifier(data, epochs, seed)
        if cache:
            caching.save(model.state_dict(), path)
        origin = "trained"
    if verbose:
        with torch.no_grad():
            acc = (model(data.test_x).argmax(1) == data.test_y).float().mean().item()
        print(f"classifier ({origin}): test accuracy {acc:.3f} on {len(data.test_x)} real test images")
    return model


# ----------------------------------------------------------------------------
# topological fidelity
# ----------------------------------------------------------------------------
def topological_fidelity(fake, real, batch_size: int = 128, n_batches: int | None = None, dims=(0, 1)) -> dict:
    """Diagram distances between generated and real batches, averaged over batches.

    Batch ``k`` of ``fake`` (rows ``k*B .. (k+1)*B``) is compared with batch
    ``k`` of ``real``; each batch is a point cloud (one point per image) and
    its Vietoris–Rips diagrams are computed up to ``max(dims)``.

    Parameters
    ----------
    fake, real : array_like or torch.Tensor
        ``(n, ...)`` images or points; both need at least
        ``n_batches * batch_size`` rows.
    batch_size : int
        Points per cloud (the training batch size, so the distances are the
        ones a TopoVAE term sees).
    n_batches : int, optional
        Batches compared (default: as many as both hold).
    dims : sequence of int
        Homology degrees (0 and/or 1).

    Returns
    -------
    dict
        ``bottleneck{d}`` (L∞ ground metric, ``gudhi.bottleneck_distance``) and
        ``wasserstein{d}`` (order 1, L∞ ground metric,
        ``gudhi.wasserstein.wasserstein_distance``), each the mean over the
        batches.

    Raises
    ------
    ValueError
        Too few rows, a bad ``batch_size``/``n_batches``, or ``dims`` outside
        {0, 1}.
    """
    fake = torch.as_tensor(np.asarray(fake) if not isinstance(fake, torch.Tensor) else fake).detach().cpu()
    real = torch.as_tensor(np.asarray(real) if not isinstance(real, torch.Tensor) else real).detach().cpu()
    dims = tuple(dims)
    if not dims or any(isinstance(d, bool) or d not in (0, 1) for d in dims):
        raise ValueError(f"dims must be a non-empty subset of (0, 1), got {dims!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}")
    available = min(len(fake), len(real)) // batch_size
    n_batches = available if n_batches is None else n_batches
    if isinstance(n_batches, bool) or not isinstance(n_batches, (int, np.integer)) or n_batches < 1:
        raise ValueError(f"n_batches must be a positive integer, got {n_batches!r}")
    if n_batches > available:
        raise ValueError(f"{n_batches} batches of {batch_size} need {n_batches * batch_size} rows of each cloud, "
                         f"got {len(fake)} and {len(real)}")
    real_diagrams = _batch_diagrams(real, batch_size, n_batches, dims)
    return _fidelity(_batch_diagrams(fake, batch_size, n_batches, dims), real_diagrams, dims)


def _batch_diagrams(cloud: torch.Tensor, batch_size: int, n_batches: int, dims) -> list[dict]:
    """``{degree: diagram}`` of each of the first ``n_batches`` batches of ``cloud`` (one point per row)."""
    from ..persistence import vr_persistence

    out = []
    for k in range(n_batches):
        pers = vr_persistence(cloud[k * batch_size:(k + 1) * batch_size].double(), max_dim=max(dims))
        out.append({d: pers.diagram(d).detach().numpy() for d in dims})
    return out


def _fidelity(fake: list[dict], real: list[dict], dims) -> dict:
    """Bottleneck and 1-Wasserstein distances of paired batch diagrams, averaged over the batches."""
    import gudhi
    from gudhi.wasserstein import wasserstein_distance as gudhi_wasserstein

    sums = {f"{kind}{d}": 0.0 for d in dims for kind in ("bottleneck", "wasserstein")}
    for a, b in zip(fake, real, strict=True):
        for d in dims:
            sums[f"bottleneck{d}"] += float(gudhi.bottleneck_distance(a[d], b[d]))
            sums[f"wasserstein{d}"] += float(gudhi_wasserstein(a[d], b[d], order=1, internal_p=np.inf))
    return {k: v / len(fake) for k, v in sums.items()}


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
    topo_batches : int
        Batches of ``topo_batch_size`` test images for the topological
        fidelity metrics (:data:`TOPO_METRICS`); 0 skips them. The batches are
        a seeded permutation of the test split, the same for every model:
        reconstructions of batch k and prior samples k*B..(k+1)*B are each
        compared with real batch k.
    topo_batch_size : int
        Images per batch (the training batch size).

    Notes
    -----
    The model may live on any device; the test images are moved to it and the
    outputs come back to the CPU, where the classifier runs.
    """

    data: object
    classifier: Classifier
    n_prior: int = 1000
    seed: int = 0
    grid: int = 10
    topo_batches: int = 0
    topo_batch_size: int = 128

    def __post_init__(self):
        if self.topo_batches < 0 or self.topo_batch_size < 2:
            raise ValueError("topo_batches must be >= 0 and topo_batch_size >= 2")
        need = self.topo_batches * self.topo_batch_size
        if need > min(len(self.data.test_x), self.n_prior):
            raise ValueError(f"{self.topo_batches} topological batches of {self.topo_batch_size} need {need} test "
                             f"images and prior samples, have {len(self.data.test_x)} and {self.n_prior}")
        from ..reproduce.caching import fixed_threads

        # What every evaluation compares with, computed once and with one torch thread, as the units that use it
        # run: the same bits whatever the thread count of the process that builds the evaluator.
        with fixed_threads(1), torch.no_grad():
            self._real_features = self.classifier.features(self.data.test_x).numpy()
            self._topo_index = torch.from_numpy(
                np.random.default_rng(self.seed).permutation(len(self.data.test_x))[:need])
            # the real batches' diagrams do not depend on the model: computed once, not at every evaluation
            self._real_diagrams = _batch_diagrams(self.data.test_x[self._topo_index], self.topo_batch_size,
                                                  self.topo_batches, (0, 1)) if self.topo_batches else []
        self._prior_seed = self.seed
        weights = hashlib.sha256()
        for name, tensor in self.classifier.state_dict().items():
            weights.update(name.encode())
            weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self._classifier_hash = weights.hexdigest()[:12]
        labels = self.data.test_y.numpy()
        firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
        rest = [i for i in range(len(labels)) if i not in set(firsts)]
        #: Test-image indices shown in grids (one per class first).
        self.grid_index = (firsts + rest)[: self.grid]

    @property
    def key(self) -> str:
        """Identifies what this evaluator records, its classifier's weights included (part of training cache keys)."""
        topo = f"-topo{self.topo_batches}x{self.topo_batch_size}" if self.topo_batches else ""
        return f"eval-v2-prior{self.n_prior}-seed{self.seed}-grid{self.grid}{topo}-clf{self._classifier_hash}"

    def __call__(self, model) -> dict:
        """Metrics of ``model`` (put in eval mode for the call) and reconstructions for grids."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        x, y = self.data.test_x, self.data.test_y
        with torch.no_grad():
            mu, _ = model.encode(x.to(device))
            recon = model.decode(mu).cpu()
            mu = mu.cpu()
            bce = F.binary_cross_entropy(recon, x, reduction="sum").item() / len(x)
            accuracy = (self.classifier(recon).argmax(1) == y).float().mean().item()
            gen = torch.Generator().manual_seed(self._prior_seed)
            z = torch.randn(self.n_prior, model.latent_dim, generator=gen)  # CPU stream: same on every device
            samples = model.decode(z.to(device)).cpu()
            feats = self.classifier.features(samples)  # the classifier's body, run once for both uses
            pred = self.classifier.head(feats).argmax(1).numpy()
            feats = feats.numpy()
        model.train(was_training)
        topo = {}
        if self.topo_batches:
            for source, cloud in (("recon", recon[self._topo_index]), ("prior", samples)):
                fake = _batch_diagrams(cloud, self.topo_batch_size, self.topo_batches, (0, 1))
                topo.update({f"{source}_{k}": v for k, v in _fidelity(fake, self._real_diagrams, (0, 1)).items()})
        return {
            **topo,
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

#: Topological fidelity metrics (:class:`Evaluator` with ``topo_batches``); smaller is closer to the real data.
TOPO_METRICS = {
    f"{source}_{kind}{d}": (f"{label} vs real batch: {kind} distance, degree {d}", False)
    for source, label in (("recon", "reconstructions"), ("prior", "prior samples"))
    for d in (0, 1)
    for kind in ("bottleneck", "wasserstein")
}
