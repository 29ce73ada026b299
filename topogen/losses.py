"""``TopologicalLoss``: a weighted sum of topological regularizers, persistence computed once per call.

The regularizers themselves, one function each, are in :mod:`topogen.terms`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .persistence import Persistence, _same_data
from .signature import signature_distance
from .terms import _DIAGRAM_TERMS, PAPER_TERMS, TERM_DEGREE, TERM_KIND, TERMS, _check_finite, _check_hyper, _persistence
from .validation import at_least as _at_least

__all__ = ["TopologicalLoss"]


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
        critical edges read off the same memory, not modified in place since,
        the learnable diagrams in the same dtype and device) reuses what that
        call prepared: a deformation toward a fixed target recomputes neither
        the target's diagrams nor, e.g., its scale-space self-kernel at every
        step. The values are those computed afresh, to the bit.
        """
        key = (true_pers.points._version, tuple(degrees), like.dtype, like.device)
        cached = self._target_cache
        if (cached is not None and cached[1] == key and cached[0].death_edges0 is true_pers.death_edges0
                and _same_data(cached[0].points, true_pers.points)):
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
            Precomputed persistence (e.g. of the input batch, once per batch);
            given with its cloud, the diagrams are read off the cloud along its
            critical edges, so the gradient reaches ``points``.
        """
        terms = self.terms(points, true_points, persistence=persistence, true_persistence=true_persistence)
        self.last_terms = {name: float(value.detach()) for name, value in terms.items()}
        if not terms:
            return torch.zeros(())
        return torch.stack([self.weights[name] * value for name, value in terms.items()]).sum()

    def extra_repr(self) -> str:
        return f"weights={self.weights}, max_dim={self.max_dim}"
