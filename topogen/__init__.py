"""topogen: topology-informed generative models (persistence, regularizers, TopoVAE)."""

from .losses import (
    ALL_TERMS,
    DEGREE2_TERMS,
    PAPER_TERMS,
    SIGNATURE_TERMS,
    TERMS,
    TopologicalLoss,
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
    loss_signature,
    loss_wasserstein0,
    loss_wasserstein1,
    loss_wasserstein2,
)
from .persistence import Persistence, vr_persistence

__version__ = "0.1.0"

__all__ = [
    "ALL_TERMS",
    "DEGREE2_TERMS",
    "PAPER_TERMS",
    "SIGNATURE_TERMS",
    "TERMS",
    "Persistence",
    "TopologicalLoss",
    "loss_bottleneck0",
    "loss_bottleneck1",
    "loss_bottleneck2",
    "loss_density",
    "loss_dsigma0",
    "loss_dsigma1",
    "loss_dsigma2",
    "loss_persentropy0",
    "loss_persentropy1",
    "loss_persentropy2",
    "loss_push0",
    "loss_signature",
    "loss_wasserstein0",
    "loss_wasserstein1",
    "loss_wasserstein2",
    "vr_persistence",
]
