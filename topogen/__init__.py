"""topogen: topology-informed generative models (persistence, regularizers, TopoVAE)."""

from .losses import (
    ALL_TERMS,
    PAPER_TERMS,
    TopologicalLoss,
    loss_bottleneck0,
    loss_bottleneck1,
    loss_density,
    loss_dsigma0,
    loss_dsigma1,
    loss_persentropy0,
    loss_persentropy1,
    loss_push0,
    loss_wasserstein0,
    loss_wasserstein1,
)
from .persistence import Persistence, vr_persistence

__version__ = "0.1.0"

__all__ = [
    "ALL_TERMS",
    "PAPER_TERMS",
    "Persistence",
    "TopologicalLoss",
    "loss_bottleneck0",
    "loss_bottleneck1",
    "loss_density",
    "loss_dsigma0",
    "loss_dsigma1",
    "loss_persentropy0",
    "loss_persentropy1",
    "loss_push0",
    "loss_wasserstein0",
    "loss_wasserstein1",
    "vr_persistence",
]
