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

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from .persistence import Persistence, vr_persistence

__all__ = [
    "PAPER_TERMS",
    "ALL_TERMS",
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
#: Every term :class:`TopologicalLoss` accepts by name.
ALL_TERMS = PAPER_TERMS + ("wasserstein0", "wasserstein1")
#: Homology degree each term needs.
TERM_KIND = {name: name.rstrip("01") for name in ALL_TERMS}
TERM_DEGREE = {
    "bottleneck0": 0,
    "bottleneck1": 1,
    "persentropy0": 0,
    "persentropy1": 1,
    "dsigma0": 0,
    "dsigma1": 1,
    "density": 0,
    "wasserstein0": 0,
    "wasserstein1": 1,
}


# ----------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------
def _positive(name: str, value) -> float:
    value = _finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _at_least(name: str, value, minimum: float) -> float:
    value = _finite(name, value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value}")
    return value


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _finite(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_diagram(name: str, dgm: torch.Tensor) -> None:
    if not isinstance(dgm, torch.Tensor) or dgm.dim() != 2 or dgm.shape[1] != 2:
        shape = tuple(dgm.shape) if isinstance(dgm, torch.Tensor) else type(dgm).__name__
        raise ValueError(f"{name} must be a (k, 2) tensor of (birth, death) pairs, got {shape}")
    if not bool(torch.isfinite(dgm).all()):
        raise ValueError(f"{name} must hold finite (birth, death) pairs only")


def _constant(value: torch.Tensor) -> torch.Tensor:
    """The value as a leaf that does not require grad."""
    return value.detach()


# ----------------------------------------------------------------------------
# bottleneck distance with an optimal matching
# ----------------------------------------------------------------------------
def _linf_matrix(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.abs(p[:, None, :] - q[None, :, :]).max(axis=-1)


_TIE = 1e-12  # relative slack when comparing recomputed costs with a candidate


def _perfect_matching(cost: np.ndarray, pa: np.ndarray, pb: np.ndarray, t: float):
    """Perfect matching of the augmented bipartite graph at threshold ``t``.

    Rows are the points of P then the diagonal copies of Q's points; columns
    are Q's points then the diagonal copies of P's points. Diagonal-to-diagonal
    edges are only needed where the transposed P–Q edge exists (a matched pair
    frees both of its diagonal copies), which keeps the graph sparse.
    Returns the column matched to each row, or None if no perfect matching.
    """
    n, m = cost.shape
    t = t + _TIE * max(1.0, abs(t))
    ii, jj = np.nonzero(cost <= t)
    ia = np.flatnonzero(pa <= t)
    jb = np.flatnonzero(pb <= t)
    rows = np.concatenate([ii, ia, n + jb, n + jj])
    cols = np.concatenate([jj, m + ia, jb, m + ii])
    graph = csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n + m, m + n))
    match = maximum_bipartite_matching(graph, perm_type="column")
    return match if bool((match >= 0).all()) else None


def _sorted_matching_cost(p, q, pa, pb) -> float:
    """Cost of the best "k most persistent with k most persistent" matching.

    The k-th most persistent point of p is matched with the k-th of q for
    k < K and everything else goes to the diagonal; the cheapest K is an upper
    bound of the bottleneck distance (K = 0 is "all to the diagonal").
    """
    ip, iq = np.argsort(-pa, kind="stable"), np.argsort(-pb, kind="stable")
    k = min(len(ip), len(iq))
    pair = np.abs(p[ip[:k]] - q[iq[:k]]).max(axis=1)
    pair_max = np.concatenate([[0.0], np.maximum.accumulate(pair)])  # K pairs used
    pa_s = np.concatenate([pa[ip], [0.0]])
    pb_s = np.concatenate([pb[iq], [0.0]])
    # after K pairs, the largest remaining diagonal cost is the K-th persistence
    rest = np.maximum(pa_s[np.arange(k + 1)], pb_s[np.arange(k + 1)])
    return float(np.maximum(pair_max, rest).min())


def _covers_forced_1d(a: np.ndarray, b_sorted: np.ndarray, t: float) -> bool:
    """Can every point of ``a`` be matched to a distinct ``b`` within ``t`` (1-D)?

    Windows ``[a - t, a + t]`` over sorted ``b`` have nondecreasing ends, so
    the greedy "leftmost free b" assignment is optimal and has the closed form
    ``g_i = i + max_{j<=i}(L_j - j)``; it succeeds iff ``g_i < R_i`` for all i.
    """
    if a.size == 0:
        return True
    a = np.sort(a)
    slack = _TIE * max(1.0, abs(t))
    left = np.searchsorted(b_sorted, a - t - slack, side="left")
    right = np.searchsorted(b_sorted, a + t + slack, side="right")
    idx = np.arange(a.size)
    greedy = idx + np.maximum.accumulate(left - idx)
    return bool((greedy < right).all())


def _feasible_1d(a, b_sorted, b, a_sorted, t) -> bool:
    # Mendelsohn–Dulmage: a matching covering both forced sets exists iff one
    # covering each exists. A point is forced when its diagonal cost exceeds t.
    return _covers_forced_1d(a[a / 2 > t], b_sorted, t) and _covers_forced_1d(b[b / 2 > t], a_sorted, t)


def bottleneck_matching(p, q):
    """Exact bottleneck distance (L∞ ground metric) and the pair realizing it.

    Parameters
    ----------
    p, q : array_like
        ``(n, 2)`` and ``(m, 2)`` finite diagrams.

    Returns
    -------
    value : float
        The bottleneck distance; equals ``gudhi.bottleneck_distance(p, q)``.
    pair : tuple
        ``("pq", i, j)`` (p[i] matched to q[j]), ``("p", i, -1)`` (p[i] to the
        diagonal), ``("q", -1, j)`` (q[j] to the diagonal) or ``("none", -1, -1)``
        for two empty diagrams. The pair belongs to an optimal matching and
        its cost is ``value``; among tied pairs one involving ``p`` is chosen.

    Notes
    -----
    The value is one of the finitely many pair costs. It is bracketed by a
    lower bound (every point must go somewhere: its cheapest option) and an
    upper bound (everything to the diagonal) and found by bisection over the
    candidate costs between them, each step one Hopcroft–Karp matching.
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    q = np.asarray(q, dtype=np.float64).reshape(-1, 2)
    n, m = len(p), len(q)
    if n + m == 0:
        return 0.0, ("none", -1, -1)
    pa = (p[:, 1] - p[:, 0]) / 2.0
    pb = (q[:, 1] - q[:, 0]) / 2.0
    cost = _linf_matrix(p, q)
    if n == 0 or m == 0:
        # Everything goes to the diagonal.
        if n and (not m or pa.max() >= pb.max(initial=-np.inf)):
            i = int(np.argmax(pa))
            return float(pa[i]), ("p", i, -1)
        j = int(np.argmax(pb))
        return float(pb[j]), ("q", -1, j)
    lower = max(np.minimum(pa, cost.min(axis=1)).max(), np.minimum(pb, cost.min(axis=0)).max())
    upper = _sorted_matching_cost(p, q, pa, pb)
    cand = np.concatenate([cost.ravel(), pa, pb])
    cand = np.unique(cand[(cand >= lower) & (cand <= upper)])
    # Bisection for the smallest feasible candidate; `upper` is feasible.
    if np.all(p[:, 0] == 0) and np.all(q[:, 0] == 0):
        # Degree 0 (all births 0): a vectorized 1-D feasibility test.
        a, b = p[:, 1], q[:, 1]
        a_sorted, b_sorted = np.sort(a), np.sort(b)

        def feasible(t):
            return _feasible_1d(a, b_sorted, b, a_sorted, t)
    else:

        def feasible(t):
            return _perfect_matching(cost, pa, pb, t) is not None

    lo, hi = -1, len(cand) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if feasible(cand[mid]):
            hi = mid
        else:
            lo = mid
    value = float(cand[hi])
    # Every optimal matching contains an element costing exactly `value` (else a
    # smaller candidate would be feasible). If only one element costs `value`, it
    # is the realizing pair; on ties, read one off an optimal matching.
    tol = _TIE * max(1.0, abs(value))
    hit_pq = np.argwhere(np.abs(cost - value) <= tol)
    hit_p = np.flatnonzero(np.abs(pa - value) <= tol)
    hit_q = np.flatnonzero(np.abs(pb - value) <= tol)
    if len(hit_pq) + len(hit_p) + len(hit_q) == 1:
        if len(hit_pq):
            return value, ("pq", int(hit_pq[0, 0]), int(hit_pq[0, 1]))
        if len(hit_p):
            return value, ("p", int(hit_p[0]), -1)
        return value, ("q", -1, int(hit_q[0]))
    best = _perfect_matching(cost, pa, pb, value)
    rows = np.arange(n)
    cols = best[:n]
    real = cols < m
    pair_cost = np.where(real, cost[rows, np.minimum(cols, m - 1)], pa)
    q_diag = best[n:] == np.arange(m)  # the diagonal copy of q_j took q_j itself
    q_cost = np.where(q_diag, pb, -np.inf)
    if pair_cost.max() >= q_cost.max() - tol:
        i = int(np.argmax(pair_cost))
        kind = ("pq", i, int(cols[i])) if real[i] else ("p", i, -1)
    else:
        kind = ("q", -1, int(np.argmax(q_cost)))
    return value, kind


def bottleneck_distance(dgm: torch.Tensor, true_dgm: torch.Tensor) -> torch.Tensor:
    """Bottleneck distance between two finite diagrams, differentiable in ``dgm``.

    The gradient flows through the single pair realizing the maximum in an
    optimal matching (see :func:`bottleneck_matching`). The result does not
    require grad when that pair is a point of ``true_dgm`` matched to the
    diagonal or when ``dgm`` is empty.
    """
    _check_diagram("dgm", dgm)
    _check_diagram("true_dgm", true_dgm)
    true_dgm = true_dgm.detach().to(dtype=dgm.dtype, device=dgm.device)
    _, (kind, i, j) = bottleneck_matching(dgm.detach().cpu().numpy(), true_dgm.cpu().numpy())
    if kind == "pq":
        return (dgm[i] - true_dgm[j]).abs().max()
    if kind == "p":
        return (dgm[i, 1] - dgm[i, 0]) / 2
    if kind == "q":
        return _constant((true_dgm[j, 1] - true_dgm[j, 0]) / 2)
    return _constant(dgm.new_zeros(()))


# ----------------------------------------------------------------------------
# Wasserstein distance
# ----------------------------------------------------------------------------
def wasserstein_distance(dgm: torch.Tensor, true_dgm: torch.Tensor, q: float = 1.0) -> torch.Tensor:
    """q-Wasserstein distance (L∞ ground metric), differentiable in ``dgm``.

    The optimal matching comes from ``gudhi.wasserstein.wasserstein_distance``
    (POT backend); the value is recomputed in torch from the matched pairs.
    """
    from gudhi.wasserstein import wasserstein_distance as gudhi_wasserstein

    q = _at_least("q", q, 1)
    _check_diagram("dgm", dgm)
    _check_diagram("true_dgm", true_dgm)
    true_dgm = true_dgm.detach().to(dtype=dgm.dtype, device=dgm.device)
    if len(dgm) + len(true_dgm) == 0:
        return _constant(dgm.new_zeros(()))
    p_np = dgm.detach().cpu().numpy().astype(np.float64)
    q_np = true_dgm.cpu().numpy().astype(np.float64)
    _, match = gudhi_wasserstein(p_np, q_np, matching=True, order=q, internal_p=np.inf)
    match = np.asarray(match, dtype=np.int64).reshape(-1, 2)
    i, j = match[:, 0], match[:, 1]
    both = (i >= 0) & (j >= 0)
    to_diag = (i >= 0) & (j < 0)
    from_diag = (i < 0) & (j >= 0)
    dev = dgm.device
    ib = torch.as_tensor(i[both], device=dev)
    jb = torch.as_tensor(j[both], device=dev)
    idg = torch.as_tensor(i[to_diag], device=dev)
    jdg = torch.as_tensor(j[from_diag], device=dev)
    c_pq = (dgm[ib] - true_dgm[jb]).abs().amax(dim=1) if len(ib) else dgm.new_zeros(0)
    c_p = (dgm[idg, 1] - dgm[idg, 0]) / 2
    c_q = (true_dgm[jdg, 1] - true_dgm[jdg, 0]) / 2
    total = (c_pq**q).sum() + (c_p**q).sum() + (c_q**q).sum()
    if len(dgm) == 0:
        total = _constant(total)
    if q == 1:
        return total
    # total ** (1/q) has an infinite slope at 0: keep the exact 0 there.
    positive = total > 0
    safe = torch.where(positive, total, torch.ones_like(total))
    return torch.where(positive, safe ** (1.0 / q), total)


# ----------------------------------------------------------------------------
# persistence entropy, scale-space kernel, density
# ----------------------------------------------------------------------------
def persistence_entropy(dgm: torch.Tensor, delta: float = 1e-3) -> torch.Tensor:
    """Persistence entropy ``-Σ (ℓ/L) log(ℓ/L)`` over bars longer than ``delta``.

    Returns a constant 0 when no bar is longer than ``delta``.
    """
    delta = _at_least("delta", delta, 0)
    _check_diagram("dgm", dgm)
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
    x = torch.linspace(0.0, maxrange, int(npoints), dtype=dgm.dtype, device=dgm.device)
    death = dgm[:, 1]
    weight = death**4
    return scale * (weight[:, None] * torch.exp(-(((death[:, None] - x[None, :]) / sigma) ** 2))).sum(0)


# ----------------------------------------------------------------------------
# losses on diagrams
# ----------------------------------------------------------------------------
def _entropy_loss(dgm, true_dgm, delta=1e-3):
    diff = persistence_entropy(dgm, delta) - persistence_entropy(true_dgm, delta)
    return diff * diff


def _dsigma_loss(dgm, true_dgm, sigma=0.05):
    true_dgm = true_dgm.to(dgm)
    value = (
        scale_space_kernel(dgm, dgm, sigma)
        + scale_space_kernel(true_dgm, true_dgm, sigma)
        - 2 * scale_space_kernel(dgm, true_dgm, sigma)
    )
    return value if len(dgm) else _constant(value)


def _density_loss(dgm, true_dgm, sigma=0.2, scale=0.002, maxrange=35.0, npoints=30):
    f = density_function(dgm, sigma, scale, maxrange, npoints)
    f_true = density_function(true_dgm.to(dgm), sigma, scale, maxrange, npoints)
    value = ((f - f_true) ** 2).mean()
    return value if len(dgm) else _constant(value)


def _push0(dgm):
    value = -dgm[:, 1].sum() / 2
    return value if len(dgm) else _constant(value)


#: The diagram-level function behind each kind of term.
_DIAGRAM_LOSSES = {
    "bottleneck": bottleneck_distance,
    "persentropy": _entropy_loss,
    "dsigma": _dsigma_loss,
    "density": _density_loss,
    "wasserstein": wasserstein_distance,
}


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
    fn = _DIAGRAM_LOSSES[kind]
    dgm = pers.diagram(dim)
    return fn(dgm, true_pers.diagram(dim).detach().to(dgm), **hyper)


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


loss_bottleneck0.__doc__ = _doc("Bottleneck distance between the degree-0 diagrams (term 0).")
loss_bottleneck1.__doc__ = _doc("Bottleneck distance between the degree-1 diagrams (term 1).")
loss_persentropy0.__doc__ = _doc("``(E(D) - E(D*))²`` of degree-0 persistence entropies (term 2); ``delta``.")
loss_persentropy1.__doc__ = _doc("``(E(D) - E(D*))²`` of degree-1 persistence entropies (term 3); ``delta``.")
loss_dsigma0.__doc__ = _doc("Squared scale-space kernel distance, degree 0 (term 4); ``sigma``.")
loss_dsigma1.__doc__ = _doc("Squared scale-space kernel distance, degree 1 (term 5); ``sigma``.")
loss_density.__doc__ = _doc(
    "Mean squared difference of 4SGDE densities of degree-0 diagrams (term 6); "
    "``sigma``, ``scale``, ``maxrange``, ``npoints``."
)
loss_wasserstein0.__doc__ = _doc("q-Wasserstein distance (L∞ ground metric) in degree 0; ``q``.")
loss_wasserstein1.__doc__ = _doc("q-Wasserstein distance (L∞ ground metric) in degree 1; ``q``.")


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
        :data:`ALL_TERMS` (which also admits ``wasserstein0``/``wasserstein1``).
        Terms of weight 0 are not computed.
    entropy_delta : float
        δ of the persistence entropies (default 0.001).
    kernel_sigma : float
        σ of the scale-space kernel terms (default 0.05).
    density_sigma, density_scale, density_maxrange, density_npoints
        σ, s, maxrange and npoints of the density term (0.2, 0.002, 35, 30).
    wasserstein_q : float
        Order of the Wasserstein terms (default 1).

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
    ):
        super().__init__()
        self.weights = self._parse_weights(weights)
        self.hyper = {
            "persentropy": {"delta": _at_least("entropy_delta", entropy_delta, 0)},
            "dsigma": {"sigma": _positive("kernel_sigma", kernel_sigma)},
            "density": {
                "sigma": _positive("density_sigma", density_sigma),
                "scale": _finite("density_scale", density_scale),
                "maxrange": _positive("density_maxrange", density_maxrange),
                "npoints": _count("density_npoints", density_npoints),
            },
            "wasserstein": {"q": _at_least("wasserstein_q", wasserstein_q, 1)},
            "bottleneck": {},
        }
        self.max_dim = max((TERM_DEGREE[name] for name in self.weights), default=0)
        self.last_terms: dict[str, float] = {}

    @staticmethod
    def _parse_weights(weights) -> dict:
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(ALL_TERMS))
            if unknown:
                raise ValueError(f"unknown topological term(s) {unknown}; known terms: {list(ALL_TERMS)}")
            items = list(weights.items())
        elif isinstance(weights, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(weights, str):
            weights = list(np.asarray(weights, dtype=object).ravel()) if not isinstance(weights, Sequence) else list(weights)
            if len(weights) != len(PAPER_TERMS):
                raise ValueError(
                    f"a weight list must have {len(PAPER_TERMS)} entries in the order {list(PAPER_TERMS)}, "
                    f"got {len(weights)}"
                )
            items = list(zip(PAPER_TERMS, weights))
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
        # One batched gather per cloud for every degree needed.
        diagrams = pers.diagrams(self.max_dim)
        with torch.no_grad():
            true_diagrams = true_pers.diagrams(self.max_dim)
        out = {}
        for name in self.weights:
            kind, dim = TERM_KIND[name], TERM_DEGREE[name]
            true_diagrams[dim] = true_diagrams[dim].to(diagrams[dim])
            fn = _DIAGRAM_LOSSES[kind]
            out[name] = fn(diagrams[dim], true_diagrams[dim], **self.hyper[kind])
        return out

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
