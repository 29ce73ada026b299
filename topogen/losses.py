"""Topological regularizers comparing the persistence diagram of a cloud with a target's.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .distances import _bottleneck, _wasserstein, bottleneck_distance, bottleneck_matching, wasserstein_distance
from .persistence import Persistence, vr_persistence
from .signature import loss_signature, signature_distance
from .summaries import (
    _density_function,
    _persistence_entropy,
    _scale_space_kernel,
    density_function,
    persistence_entropy,
    scale_space_kernel,
)
from .validation import at_least as _at_least
from .validation import check_diagram
from .validation import constant as _constant
from .validation import count as _count
from .validation import finite as _finite
from .validation import positive as _positive

__all__ = [
    "PAPER_TERMS",
    "ALL_TERMS",
    "DEGREE2_TERMS",
    "SIGNATURE_TERMS",
    "TERMS",
    "TERM_DEGREE",
    "TERM_KIND",
    "TopologicalLoss",
    "bottleneck_matching",
    "bottleneck_distance",
    "wasserstein_distance",
    "persistence_entropy",
    "scale_space_kernel",
    "density_function",
    "loss_bottleneck0",
    "loss_bottleneck1",
    "loss_persentropy0",
    "loss_persentropy1",
    "loss_dsigma0",
    "loss_dsigma1",
    "loss_density",
    "loss_wasserstein0",
    "loss_wasserstein1",
    "loss_bottleneck2",
    "loss_wasserstein2",
    "loss_persentropy2",
    "loss_dsigma2",
    "loss_signature",
    "loss_push0",
]

#: The paper's seven regularizers, in the order of its weight vector.
PAPER_TERMS = (
    "bottleneck0",
    "bottleneck1",
    "persentropy0",
    "persentropy1",
    "dsigma0",
    "dsigma1",
    "density",
)
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
    if pers is None:
        if points is None:
            raise ValueError(f"give either {name} or its precomputed persistence")
        return vr_persistence(points, max_dim=dim)
    if not isinstance(pers, Persistence):
        raise ValueError(f"the persistence of {name} must be a topogen.persistence.Persistence")
    if pers.max_dim < dim:
        raise ValueError(f"the persistence of {name} was computed up to degree {pers.max_dim}, degree {dim} is needed")
    return pers


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
        so one computation serves several terms.

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


def loss_density(
    points,
    true_points,
    *,
    persistence=None,
    true_persistence=None,
    sigma=0.2,
    scale=0.002,
    maxrange=35.0,
    npoints=30,
):
    return _term(
        "density",
        0,
        points,
        true_points,
        persistence,
        true_persistence,
        sigma=sigma,
        scale=scale,
        maxrange=maxrange,
        npoints=npoints,
    )


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


# ----------------------------------------------------------------------------
# the combined loss
# ----------------------------------------------------------------------------
class TopologicalLoss(torch.nn.Module):
    """Weighted sum of topological regularizers, persistence computed once per call.

    Parameters
    ----------
    weights : sequence of 7 floats or mapping
        The paper's weight vector (order of :data:`PAPER_TERMS`), e.g.
        ``[15, 15, 0, 0, 0, 0, 0]``, or a mapping ``{name: weight}`` over
        :data:`TERMS`: the paper's seven, ``wasserstein0``/``wasserstein1``,
        the degree-2 terms of :data:`DEGREE2_TERMS` (``bottleneck2``,
        ``wasserstein2``, ``persentropy2``, ``dsigma2``) and the signature loss
        ``signature0``/``signature1``/``signature2`` (:func:`loss_signature`
        on the pairings of that degree; its two clouds must have the same
        size, rows corresponding). Terms of weight 0 are not computed.
    entropy_delta : float
        δ of the persistence entropies (default 0.001).
    kernel_sigma : float
        σ of the scale-space kernel terms (default 0.05).
    density_sigma, density_scale, density_maxrange, density_npoints
        σ, s, maxrange and npoints of the density term (0.2, 0.002, 35, 30).
    wasserstein_q : float
        Order of the Wasserstein terms (default 1).
    signature_normalize : bool
        Divide each distance matrix by its largest entry in the signature
        terms (default True).

    Attributes
    ----------
    weights : dict
        Active terms and their weights.
    max_dim : int
        Highest degree any active term needs; persistence is computed only up
        to it (degree 0 only takes the fast path).
    last_terms : dict
        Unweighted value (float) of every active term at the last call.

    Raises
    ------
    ValueError
        Wrong length of a weight list, unknown name, negative or non-finite
        weight, or invalid hyperparameter.
    """

    def __init__(
        self,
        weights,
        *,
        entropy_delta: float = 1e-3,
        kernel_sigma: float = 0.05,
        density_sigma: float = 0.2,
        density_scale: float = 0.002,
        density_maxrange: float = 35.0,
        density_npoints: int = 30,
        wasserstein_q: float = 1.0,
        signature_normalize: bool = True,
    ):
        super().__init__()
        self.weights = self._parse_weights(weights)
        self.hyper = {
            "persentropy": _check_hyper("persentropy", "entropy_", delta=entropy_delta),
            "dsigma": _check_hyper("dsigma", "kernel_", sigma=kernel_sigma),
            "density": _check_hyper("density", "density_", sigma=density_sigma, scale=density_scale,
                                    maxrange=density_maxrange, npoints=density_npoints),
            "wasserstein": _check_hyper("wasserstein", "wasserstein_", q=wasserstein_q),
            "bottleneck": {},
            "signature": {"normalize": bool(signature_normalize)},
        }
        self.max_dim = max((TERM_DEGREE[name] for name in self.weights), default=0)
        self.last_terms: dict[str, float] = {}
        self._target_cache = None  # (target persistence, key, prepared target parts) of the last call

    @staticmethod
    def _parse_weights(weights) -> dict:
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(TERMS), key=str)
            if unknown:
                raise ValueError(f"unknown topological term(s) {unknown}; known terms: {list(TERMS)}")
            items = list(weights.items())
        elif isinstance(weights, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(weights, str):
            weights = list(weights) if isinstance(weights, Sequence) else list(np.asarray(weights, dtype=object).flat)
            if len(weights) != len(PAPER_TERMS):
                raise ValueError(
                    f"a weight list must have {len(PAPER_TERMS)} entries in the order {list(PAPER_TERMS)}, "
                    f"got {len(weights)}"
                )
            items = list(zip(PAPER_TERMS, weights, strict=True))
        else:
            raise ValueError(f"weights must be a list of 7 numbers or a mapping by name, got {type(weights).__name__}")
        active = {}
        for name, w in items:
            w = _at_least(f"weight of {name}", w, 0)
            if w > 0:
                active[name] = w
        return active

    def terms(self, points=None, true_points=None, *, persistence=None, true_persistence=None) -> dict:
        """Unweighted value of every active term, as tensors, by name."""
        if not self.weights:
            return {}
        pers = _persistence(points, persistence, self.max_dim, "points")
        true_pers = _persistence(true_points, true_persistence, self.max_dim, "true_points")
        # One batched gather per cloud for every degree a diagram term needs.
        degrees = sorted({TERM_DEGREE[n] for n in self.weights if TERM_KIND[n] != "signature"})
        diagrams, targets = {}, {}
        if degrees:
            diagrams = pers._diagrams(degrees)
            _check_finite(diagrams.values(), "points")
            targets = self._targets(true_pers, degrees, diagrams[degrees[0]])
        out = {}
        for name in self.weights:
            kind, dim = TERM_KIND[name], TERM_DEGREE[name]
            if kind == "signature":
                out[name] = signature_distance(pers, true_pers, (dim,), **self.hyper[kind])
            else:
                out[name] = _DIAGRAM_TERMS[kind][1](diagrams[dim], targets[name], **self.hyper[kind])
        return out

    def _targets(self, true_pers: Persistence, degrees: list, like: torch.Tensor) -> dict:
        """What each diagram term needs of the target alone, by term: computed once per target.

        A call with the same target persistence as the last call (the same
        object, its points not modified in place since, the learnable diagrams
        in the same dtype and device) reuses what that call prepared: a
        deformation toward a fixed target recomputes neither the target's
        diagrams nor, e.g., its scale-space self-kernel at every step. The
        values are those computed afresh, to the bit.
        """
        key = (true_pers.points._version, tuple(degrees), like.dtype, like.device)
        cached = self._target_cache
        if cached is not None and cached[0] is true_pers and cached[1] == key:
            return cached[2]
        with torch.no_grad():
            true = {d: v.to(like) for d, v in true_pers._diagrams(degrees).items()}
            _check_finite(true.values(), "true_points")
            targets = {name: _DIAGRAM_TERMS[TERM_KIND[name]][0](true[TERM_DEGREE[name]], **self.hyper[TERM_KIND[name]])
                       for name in self.weights if TERM_KIND[name] != "signature"}
        self._target_cache = (true_pers, key, targets)
        return targets

    def __getstate__(self):
        return {**self.__dict__, "_target_cache": None}  # a copy or a pickle does not carry the last target

    def forward(self, points=None, true_points=None, *, persistence=None, true_persistence=None) -> torch.Tensor:
        """Weighted sum of the active terms (a scalar tensor).

        Parameters
        ----------
        points, true_points : torch.Tensor
            Learnable and target clouds, ``(N, ...)`` and ``(M, ...)``.
        persistence, true_persistence : Persistence, optional
            Precomputed persistence (e.g. of the input batch, once per batch).
        """
        terms = self.terms(points, true_points, persistence=persistence, true_persistence=true_persistence)
        self.last_terms = {name: float(value.detach()) for name, value in terms.items()}
        if not terms:
            return torch.zeros(())
        return torch.stack([self.weights[name] * value for name, value in terms.items()]).sum()

    def extra_repr(self) -> str:
        return f"weights={self.weights}, max_dim={self.max_dim}"
