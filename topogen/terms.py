"""The topological regularizers, one function each: a cloud's persistence diagram against a target's.

Every regularizer compares the diagram ``D`` of a learnable cloud ``points`` with
the diagram ``D*`` of ``true_points`` (treated as a constant). The paper's seven
are combined by a weight vector in the order of :data:`PAPER_TERMS`::

    0 bottleneck0   1 bottleneck1   2 persentropy0   3 persentropy1
    4 dsigma0       5 dsigma1       6 density

Two Wasserstein terms and ``push0`` (a term without a target) complete the set.
All arithmetic over diagram points is vectorized; the only non-torch steps are
the optimal matchings of the bottleneck (exact, by bisection over candidate
values with Hopcroft–Karp matchings) and of the Wasserstein distance (gudhi/POT),
whose values are then recomputed in torch from the matched pairs.

A term whose value cannot depend on ``points`` (empty diagram; a bottleneck
realized by a target point matched to the diagonal) is returned as a tensor that
does not require grad, so callers can test ``loss.requires_grad``.
:class:`~topogen.losses.TopologicalLoss` combines them with weights.
"""

from __future__ import annotations

import torch

from .distances import _bottleneck, _wasserstein
from .persistence import Persistence, as_point_tensor, vr_persistence
from .summaries import _density_function, _persistence_entropy, _scale_space_kernel
from .validation import at_least as _at_least
from .validation import check_diagram
from .validation import constant as _constant
from .validation import count as _count
from .validation import finite as _finite
from .validation import positive as _positive

__all__ = ["PAPER_TERMS", "ALL_TERMS", "DEGREE2_TERMS", "SIGNATURE_TERMS", "TERMS", "TERM_DEGREE", "TERM_KIND",
           "loss_bottleneck0", "loss_bottleneck1", "loss_persentropy0", "loss_persentropy1", "loss_dsigma0",
           "loss_dsigma1", "loss_density", "loss_wasserstein0", "loss_wasserstein1", "loss_bottleneck2",
           "loss_wasserstein2", "loss_persentropy2", "loss_dsigma2", "loss_push0"]

#: The paper's seven regularizers, in the order of its weight vector.
PAPER_TERMS = ("bottleneck0", "bottleneck1", "persentropy0", "persentropy1", "dsigma0", "dsigma1", "density")
#: The paper's seven plus Wasserstein, degrees 0 and 1: the diagram terms the ablations compare.
ALL_TERMS = PAPER_TERMS + ("wasserstein0", "wasserstein1")
#: Diagram terms in degree 2 (voids), beside the paper's list (which keeps its meaning).
DEGREE2_TERMS = ("bottleneck2", "wasserstein2", "persentropy2", "dsigma2")
#: The topological signature loss (Moor et al., 2020) on the pairings of one degree each.
SIGNATURE_TERMS = ("signature0", "signature1", "signature2")
#: Every term :class:`TopologicalLoss` accepts by name.
TERMS = ALL_TERMS + DEGREE2_TERMS + SIGNATURE_TERMS
#: Kind of each term (the function behind it) and the homology degree it needs.
TERM_KIND = {name: name.rstrip("012") for name in TERMS}
TERM_DEGREE = {name: 0 if name == "density" else int(name[-1]) for name in TERMS}


# ----------------------------------------------------------------------------
# losses on diagrams
# ----------------------------------------------------------------------------
# Each kind of diagram term in two parts: what depends on the target diagram alone, prepared once per target (a fixed
# target, as in the deformations, is not recomputed at every step), and the value given the learnable diagram. Both
# take checked diagrams (the target already in the learnable diagram's dtype and device) and checked hyperparameters.
def _as_is(true_dgm, **_):
    return true_dgm


def _entropy_target(true_dgm, delta=1e-3):
    return _persistence_entropy(true_dgm, delta)


def _entropy_value(dgm, target, delta=1e-3):
    diff = _persistence_entropy(dgm, delta) - target
    return diff * diff


def _dsigma_target(true_dgm, sigma=0.05):
    return true_dgm, _scale_space_kernel(true_dgm, true_dgm, sigma)


def _dsigma_value(dgm, target, sigma=0.05):
    true_dgm, k_true = target
    value = _scale_space_kernel(dgm, dgm, sigma) + k_true - 2 * _scale_space_kernel(dgm, true_dgm, sigma)
    return value if len(dgm) else _constant(value)


def _density_target(true_dgm, sigma=0.2, scale=0.002, maxrange=35.0, npoints=30):
    return _density_function(true_dgm, sigma, scale, maxrange, npoints)


def _density_value(dgm, target, sigma=0.2, scale=0.002, maxrange=35.0, npoints=30):
    f = _density_function(dgm, sigma, scale, maxrange, npoints)
    value = ((f - target) ** 2).mean()
    return value if len(dgm) else _constant(value)


def _push0(dgm):
    value = -dgm[:, 1].sum() / 2
    return value if len(dgm) else _constant(value)


#: ``(target part, value part)`` of each kind of diagram term.
_DIAGRAM_TERMS = {
    "bottleneck": (_as_is, _bottleneck),
    "persentropy": (_entropy_target, _entropy_value),
    "dsigma": (_dsigma_target, _dsigma_value),
    "density": (_density_target, _density_value),
    "wasserstein": (_as_is, _wasserstein),
}


#: The check of each hyperparameter of each kind of diagram term (``ValueError`` naming it).
_HYPER_CHECKS = {
    "persentropy": {"delta": lambda name, v: _at_least(name, v, 0)},
    "dsigma": {"sigma": _positive},
    "density": {"sigma": _positive, "scale": _finite, "maxrange": _positive, "npoints": _count},
    "wasserstein": {"q": lambda name, v: _at_least(name, v, 1)},
    "bottleneck": {},
}


def _check_hyper(kind: str, prefix: str = "", **hyper) -> dict:
    """Hyperparameters of a ``kind`` term, checked; an error names ``prefix + name`` (e.g. ``kernel_sigma``)."""
    checks = _HYPER_CHECKS[kind]
    return {name: checks[name](prefix + name, value) for name, value in hyper.items()}


def _check_finite(diagrams, name: str) -> None:
    """One check that every diagram of ``diagrams`` holds finite values (``ValueError`` naming ``name``)."""
    diagrams = list(diagrams)
    if diagrams and not bool(torch.isfinite(torch.cat(diagrams)).all()):
        raise ValueError(f"the diagrams of {name} must hold finite (birth, death) pairs only")


def _persistence(points, pers: Persistence | None, dim: int, name: str) -> Persistence:
    """The persistence of ``points``: computed, or ``pers`` read off ``points`` when both are given.

    Given both, the diagrams are measured on ``points`` along the critical edges
    of ``pers`` (:meth:`Persistence.with_points`), so the gradient reaches the
    cloud the caller passed even when ``pers`` was computed from a detached copy.
    """
    if pers is None:
        if points is None:
            raise ValueError(f"give either {name} or its precomputed persistence")
        return vr_persistence(points, max_dim=dim, name=name)
    if not isinstance(pers, Persistence):
        raise ValueError(f"the persistence of {name} must be a topogen.persistence.Persistence")
    if pers.max_dim < dim:
        raise ValueError(f"the persistence of {name} was computed up to degree {pers.max_dim}, degree {dim} is needed")
    if points is None:
        return pers
    flat = as_point_tensor(points, name, check_finite=False)  # the diagrams are checked for NaN/inf
    if len(flat) != len(pers):
        raise ValueError(f"{name} holds {len(flat)} points, its persistence was computed for {len(pers)}")
    return pers.with_points(flat)


def _term(kind: str, dim: int, points, true_points, persistence, true_persistence, **hyper):
    pers = _persistence(points, persistence, dim, "points")
    true_pers = _persistence(true_points, true_persistence, dim, "true_points")
    hyper = _check_hyper(kind, **hyper)
    target_part, value_part = _DIAGRAM_TERMS[kind]
    dgm = pers.diagram(dim)
    true_dgm = true_pers.diagram(dim).detach().to(dgm)
    check_diagram("dgm", dgm)
    check_diagram("true_dgm", true_dgm)
    return value_part(dgm, target_part(true_dgm, **hyper), **hyper)


def _doc(definition: str) -> str:
    return f"""{definition}

    Parameters
    ----------
    points : torch.Tensor
        ``(N, ...)`` learnable cloud (gradients flow back to it).
    true_points : torch.Tensor or None
        ``(M, ...)`` target cloud (constant); may be None when
        ``true_persistence`` is given.
    persistence, true_persistence : Persistence, optional
        Precomputed :func:`~topogen.persistence.vr_persistence` of either cloud,
        so one computation serves several terms. When the cloud is given too,
        its diagram is read off it along these critical edges: the gradient
        reaches ``points`` even if ``persistence`` came from a detached copy.

    Returns
    -------
    torch.Tensor
        Scalar; does not require grad when it cannot depend on ``points``.
    """


def loss_bottleneck0(points, true_points, *, persistence=None, true_persistence=None):
    return _term("bottleneck", 0, points, true_points, persistence, true_persistence)


def loss_bottleneck1(points, true_points, *, persistence=None, true_persistence=None):
    return _term("bottleneck", 1, points, true_points, persistence, true_persistence)


def loss_persentropy0(points, true_points, *, persistence=None, true_persistence=None, delta=1e-3):
    return _term("persentropy", 0, points, true_points, persistence, true_persistence, delta=delta)


def loss_persentropy1(points, true_points, *, persistence=None, true_persistence=None, delta=1e-3):
    return _term("persentropy", 1, points, true_points, persistence, true_persistence, delta=delta)


def loss_dsigma0(points, true_points, *, persistence=None, true_persistence=None, sigma=0.05):
    return _term("dsigma", 0, points, true_points, persistence, true_persistence, sigma=sigma)


def loss_dsigma1(points, true_points, *, persistence=None, true_persistence=None, sigma=0.05):
    return _term("dsigma", 1, points, true_points, persistence, true_persistence, sigma=sigma)


def loss_density(points, true_points, *, persistence=None, true_persistence=None, sigma=0.2, scale=0.002,
                 maxrange=35.0, npoints=30):
    return _term("density", 0, points, true_points, persistence, true_persistence, sigma=sigma, scale=scale,
                 maxrange=maxrange, npoints=npoints)


def loss_wasserstein0(points, true_points, *, persistence=None, true_persistence=None, q=1.0):
    return _term("wasserstein", 0, points, true_points, persistence, true_persistence, q=q)


def loss_wasserstein1(points, true_points, *, persistence=None, true_persistence=None, q=1.0):
    return _term("wasserstein", 1, points, true_points, persistence, true_persistence, q=q)


def loss_bottleneck2(points, true_points, *, persistence=None, true_persistence=None):
    return _term("bottleneck", 2, points, true_points, persistence, true_persistence)


def loss_wasserstein2(points, true_points, *, persistence=None, true_persistence=None, q=1.0):
    return _term("wasserstein", 2, points, true_points, persistence, true_persistence, q=q)


def loss_persentropy2(points, true_points, *, persistence=None, true_persistence=None, delta=1e-3):
    return _term("persentropy", 2, points, true_points, persistence, true_persistence, delta=delta)


def loss_dsigma2(points, true_points, *, persistence=None, true_persistence=None, sigma=0.05):
    return _term("dsigma", 2, points, true_points, persistence, true_persistence, sigma=sigma)


def loss_push0(points, *, persistence=None):
    """``-Σ d_i / 2`` over the finite degree-0 bars: pushes clusters apart.

    Not a regularizer (it has no target): the synthetic experiments use it on
    steps where no regularizer has a gradient path.

    Parameters
    ----------
    points : torch.Tensor
        ``(N, ...)`` cloud.
    persistence : Persistence, optional
        Its precomputed persistence.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    pers = _persistence(points, persistence, 0, "points")
    return _push0(pers.diagram(0))


_DEFINITIONS = {
    loss_bottleneck0: "Bottleneck distance between the degree-0 diagrams (term 0).",
    loss_bottleneck1: "Bottleneck distance between the degree-1 diagrams (term 1).",
    loss_persentropy0: "``(E(D) - E(D*))²`` of degree-0 persistence entropies (term 2); ``delta``.",
    loss_persentropy1: "``(E(D) - E(D*))²`` of degree-1 persistence entropies (term 3); ``delta``.",
    loss_dsigma0: "Squared scale-space kernel distance, degree 0 (term 4); ``sigma``.",
    loss_dsigma1: "Squared scale-space kernel distance, degree 1 (term 5); ``sigma``.",
    loss_density: "Mean squared difference of 4SGDE densities of degree-0 diagrams (term 6); "
    "``sigma``, ``scale``, ``maxrange``, ``npoints``.",
    loss_wasserstein0: "q-Wasserstein distance (L∞ ground metric) in degree 0; ``q``.",
    loss_wasserstein1: "q-Wasserstein distance (L∞ ground metric) in degree 1; ``q``.",
    loss_bottleneck2: "Bottleneck distance between the degree-2 diagrams (voids).",
    loss_wasserstein2: "q-Wasserstein distance (L∞ ground metric) in degree 2 (voids); ``q``.",
    loss_persentropy2: "``(E(D) - E(D*))²`` of degree-2 persistence entropies (voids); ``delta``.",
    loss_dsigma2: "Squared scale-space kernel distance, degree 2 (voids); ``sigma``.",
}
for _fn, _definition in _DEFINITIONS.items():
    _fn.__doc__ = _doc(_definition)
