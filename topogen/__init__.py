"""topogen: topology-informed generative models.

The library a user imports into their own training loop: differentiable
Vietoris–Rips persistence (:mod:`topogen.persistence`), distances between
diagrams (:mod:`topogen.distances`), diagram summaries
(:mod:`topogen.summaries`), the regularizers one by one (:mod:`topogen.terms`),
the signature loss (:mod:`topogen.signature`) and their weighted sum
:class:`TopologicalLoss` (:mod:`topogen.losses`).

The paper's experiments built on it live in :mod:`topogen.experiments`; the
machinery that reproduces the notebooks (runner, sweeps, caches, figure
files) in :mod:`topogen.reproduce`.
"""

from .distances import bottleneck_distance, bottleneck_matching, wasserstein_distance
from .losses import TopologicalLoss
from .persistence import Persistence, prefetch_persistence, vr_persistence
from .signature import loss_signature
from .summaries import density_function, persistence_entropy, scale_space_kernel
from .terms import (
    ALL_TERMS,
    DEGREE2_TERMS,
    PAPER_TERMS,
    SIGNATURE_TERMS,
    TERMS,
    loss_bottleneck0,
    loss_bottleneck1,
    loss_bottleneck2,
    loss_density,
    loss_dsigma0,
    loss_dsigma1,
    loss_dsigma2,
    loss_persentropy0,
    loss_persentropy1,
    loss_persentropy2,
    loss_push0,
    loss_wasserstein0,
    loss_wasserstein1,
    loss_wasserstein2,
)

__version__ = "0.1.0"

__all__ = [
    "ALL_TERMS", "DEGREE2_TERMS", "PAPER_TERMS", "SIGNATURE_TERMS", "TERMS", "Persistence", "TopologicalLoss",
    "bottleneck_distance", "bottleneck_matching", "density_function", "loss_bottleneck0", "loss_bottleneck1",
    "loss_bottleneck2", "loss_density", "loss_dsigma0", "loss_dsigma1", "loss_dsigma2", "loss_persentropy0",
    "loss_persentropy1", "loss_persentropy2", "loss_push0", "loss_signature", "loss_wasserstein0", "loss_wasserstein1",
    "loss_wasserstein2", "persistence_entropy", "prefetch_persistence", "scale_space_kernel", "vr_persistence",
    "wasserstein_distance",
]
