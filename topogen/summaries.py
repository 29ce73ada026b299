"""Summaries of persistence diagrams: persistence entropy, the scale-space kernel, the "4SGDE" density.

Each is a torch function of a ``(k, 2)`` diagram, vectorized over its bars
(the kernel over all pairs of bars at once), so the regularizers of
:mod:`topogen.losses` built on them are differentiable.
"""

from __future__ import annotations

import math

import torch

from .validation import at_least as _at_least
from .validation import check_diagram as _check_diagram
from .validation import constant as _constant
from .validation import count as _count
from .validation import finite as _finite
from .validation import positive as _positive

__all__ = ["persistence_entropy", "scale_space_kernel", "density_function"]


def persistence_entropy(dgm: torch.Tensor, delta: float = 1e-3) -> torch.Tensor:
    """Persistence entropy ``-Σ (ℓ/L) log(ℓ/L)`` over bars longer than ``delta``.

    Returns a constant 0 when no bar is longer than ``delta``.
    """
    delta = _at_least("delta", delta, 0)
    _check_diagram("dgm", dgm)
    return _persistence_entropy(dgm, delta)


def _persistence_entropy(dgm: torch.Tensor, delta: float) -> torch.Tensor:
    """:func:`persistence_entropy` of a checked diagram and ``delta`` (the regularizers' inner loop)."""
    lengths = dgm[:, 1] - dgm[:, 0]
    lengths = lengths[lengths > delta]
    if lengths.numel() == 0:
        return _constant(dgm.new_zeros(()))
    prob = lengths / lengths.sum()
    return -(prob * torch.log(prob)).sum()


def scale_space_kernel(f: torch.Tensor, g: torch.Tensor, sigma: float = 0.05) -> torch.Tensor:
    """Persistence scale-space kernel k_σ(F, G) of Reininghaus et al. (2015).

    ``1/(8πσ) Σ_{p∈F, q∈G} [exp(-|p-q|²/(8σ)) - exp(-|p-q̄|²/(8σ))]`` with
    ``q̄ = (d_q, b_q)``, all pairs at once.
    """
    sigma = _positive("sigma", sigma)
    _check_diagram("f", f)
    _check_diagram("g", g)
    return _scale_space_kernel(f, g, sigma)


def _scale_space_kernel(f: torch.Tensor, g: torch.Tensor, sigma: float) -> torch.Tensor:
    """:func:`scale_space_kernel` of checked diagrams and ``sigma``."""
    if len(f) == 0 or len(g) == 0:
        return f.new_zeros(())
    d2 = ((f[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    d2_mirror = ((f[:, None, :] - g.flip(1)[None, :, :]) ** 2).sum(-1)
    return (torch.exp(-d2 / (8 * sigma)) - torch.exp(-d2_mirror / (8 * sigma))).sum() / (8 * math.pi * sigma)


def density_function(
    dgm: torch.Tensor, sigma: float = 0.2, scale: float = 0.002, maxrange: float = 35.0, npoints: int = 30
) -> torch.Tensor:
    """The "4SGDE" density ``s Σ d_i⁴ exp(-((d_i - x)/σ)²)`` of a degree-0 diagram.

    Evaluated at ``x = linspace(0, maxrange, npoints)``; returns ``(npoints,)``.
    """
    sigma = _positive("sigma", sigma)
    scale = _finite("scale", scale)
    maxrange = _positive("maxrange", maxrange)
    npoints = _count("npoints", npoints)
    _check_diagram("dgm", dgm)
    return _density_function(dgm, sigma, scale, maxrange, npoints)


def _density_function(dgm: torch.Tensor, sigma: float, scale: float, maxrange: float, npoints: int) -> torch.Tensor:
    """:func:`density_function` of a checked diagram and checked parameters."""
    x = torch.linspace(0.0, maxrange, int(npoints), dtype=dgm.dtype, device=dgm.device)
    death = dgm[:, 1]
    weight = death**4
    return scale * (weight[:, None] * torch.exp(-(((death[:, None] - x[None, :]) / sigma) ** 2))).sum(0)
