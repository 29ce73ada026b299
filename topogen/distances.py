"""Distances between persistence diagrams, with the optimal matchings that make them differentiable.

* :func:`bottleneck_matching` — the exact bottleneck distance (L∞ ground
  metric) and one pair of an optimal matching that realizes it, by bisection
  over the candidate costs (a closed-form 1-D feasibility test when every
  birth is 0, Hopcroft–Karp matchings otherwise);
* :func:`bottleneck_distance` / :func:`wasserstein_distance` — the same
  values as torch scalars, recomputed from the matched pairs so gradients flow
  to the first diagram (the Wasserstein matching is POT's exact network simplex).

The regularizers of :mod:`topogen.losses` are built on these.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from .validation import at_least, check_diagram, constant

__all__ = ["bottleneck_matching", "bottleneck_distance", "wasserstein_distance"]


# ----------------------------------------------------------------------------
# bottleneck distance with an optimal matching
# ----------------------------------------------------------------------------
def _linf_matrix(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(n, m)`` L∞ distances between the points of two diagrams (two coordinates: no reduction over a tiny axis)."""
    return np.maximum(np.abs(p[:, None, 0] - q[None, :, 0]), np.abs(p[:, None, 1] - q[None, :, 1]))


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


def _finite_pairs(name: str, dgm) -> np.ndarray:
    """``dgm`` as a float64 ``(k, 2)`` array; ``ValueError`` naming it unless it is one, with finite entries."""
    arr = np.asarray(dgm, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be a (k, 2) array of (birth, death) pairs, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite (birth, death) pairs only")
    return arr


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

    Raises
    ------
    ValueError
        When ``p`` or ``q`` is not a ``(k, 2)`` array or holds NaN or inf.

    Notes
    -----
    The value is one of the finitely many pair costs. It is bracketed by a
    lower bound (every point must go somewhere: its cheapest option) and an
    upper bound (everything to the diagonal) and found by bisection over the
    candidate costs between them, each step one Hopcroft–Karp matching.
    """
    return _bottleneck_matching(_finite_pairs("p", p), _finite_pairs("q", q))


def _bottleneck_matching(p: np.ndarray, q: np.ndarray):
    """:func:`bottleneck_matching` of checked float64 ``(k, 2)`` diagrams (the regularizers' inner loop)."""
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
    return value, _realizing_pair(cost, pa, pb, value)


def _realizing_pair(cost: np.ndarray, pa: np.ndarray, pb: np.ndarray, value: float) -> tuple:
    """A pair of an optimal matching that costs ``value`` (see :func:`bottleneck_matching`)."""
    # Every optimal matching contains an element costing exactly `value` (else a
    # smaller candidate would be feasible). If only one element costs `value`, it
    # is the realizing pair; on ties, read one off an optimal matching.
    tol = _TIE * max(1.0, abs(value))
    hit_pq = np.argwhere(np.abs(cost - value) <= tol)
    hit_p = np.flatnonzero(np.abs(pa - value) <= tol)
    hit_q = np.flatnonzero(np.abs(pb - value) <= tol)
    if len(hit_pq) + len(hit_p) + len(hit_q) == 1:
        if len(hit_pq):
            return ("pq", int(hit_pq[0, 0]), int(hit_pq[0, 1]))
        if len(hit_p):
            return ("p", int(hit_p[0]), -1)
        return ("q", -1, int(hit_q[0]))
    n, m = cost.shape
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
    return kind


def _host64(dgm: torch.Tensor) -> np.ndarray:
    """A diagram as a float64 numpy array for the matchings (exact for every floating dtype, bfloat16 included)."""
    return dgm.detach().to(device="cpu", dtype=torch.float64).numpy()


def bottleneck_distance(dgm: torch.Tensor, true_dgm: torch.Tensor) -> torch.Tensor:
    """Bottleneck distance between two finite diagrams, differentiable in ``dgm``.

    The gradient flows through the single pair realizing the maximum in an
    optimal matching (see :func:`bottleneck_matching`). The result does not
    require grad when that pair is a point of ``true_dgm`` matched to the
    diagonal or when ``dgm`` is empty.
    """
    check_diagram("dgm", dgm)
    check_diagram("true_dgm", true_dgm)
    return _bottleneck(dgm, true_dgm)


def _bottleneck(dgm: torch.Tensor, true_dgm: torch.Tensor) -> torch.Tensor:
    """:func:`bottleneck_distance` of checked diagrams (the regularizers' inner loop)."""
    true_dgm = true_dgm.detach().to(dtype=dgm.dtype, device=dgm.device)
    _, (kind, i, j) = _bottleneck_matching(_host64(dgm), _host64(true_dgm))
    if kind == "pq":
        return (dgm[i] - true_dgm[j]).abs().max()
    if kind == "p":
        return (dgm[i, 1] - dgm[i, 0]) / 2
    if kind == "q":
        return constant((true_dgm[j, 1] - true_dgm[j, 0]) / 2)
    return constant(dgm.new_zeros(()))


# ----------------------------------------------------------------------------
# Wasserstein distance
# ----------------------------------------------------------------------------
def wasserstein_distance(dgm: torch.Tensor, true_dgm: torch.Tensor, q: float = 1.0) -> torch.Tensor:
    """q-Wasserstein distance (L∞ ground metric), differentiable in ``dgm``.

    The optimal matching is exact (POT's network simplex on the
    diagonal-augmented cost matrix, the matching ``gudhi.wasserstein`` returns);
    the value is recomputed in torch from the matched pairs.
    """
    q = at_least("q", q, 1)
    check_diagram("dgm", dgm)
    check_diagram("true_dgm", true_dgm)
    return _wasserstein(dgm, true_dgm, q)


def _optimal_matching(p: np.ndarray, q: np.ndarray, order: float) -> np.ndarray:
    """``(k, 2)`` pairs ``(i, j)`` of an optimal q-Wasserstein matching (L∞ ground metric) of two finite diagrams.

    ``-1`` stands for the diagonal. Exact: POT's network simplex on the cost
    matrix augmented by one row and one column for the diagonal (the
    construction of ``gudhi.wasserstein``, so the matching is the one gudhi
    returns), built here without gudhi's handling of essential points and of
    the total cost, which finite diagrams do not need.
    """
    import ot

    n, m = len(p), len(q)
    if n == 0 or m == 0:  # everything to the diagonal
        return np.array([[i, -1] for i in range(n)] + [[-1, j] for j in range(m)], dtype=np.int64).reshape(-1, 2)
    cost = np.zeros((n + 1, m + 1))
    cost[:n, :m] = _linf_matrix(p, q) ** order
    cost[:n, m] = ((p[:, 1] - p[:, 0]) * 0.5) ** order
    cost[n, :m] = ((q[:, 1] - q[:, 0]) * 0.5) ** order
    a, b = np.ones(n + 1), np.ones(m + 1)
    a[-1], b[-1] = m, n
    plan = ot.emd(a, b, cost, numItermax=2000000)
    plan[-1, -1] = 0  # diagonal to diagonal is no pair
    match = np.argwhere(plan)
    match[match[:, 0] >= n, 0] = -1
    match[match[:, 1] >= m, 1] = -1
    return match


def _wasserstein(dgm: torch.Tensor, true_dgm: torch.Tensor, q: float) -> torch.Tensor:
    """:func:`wasserstein_distance` of checked diagrams and a checked order ``q``."""
    true_dgm = true_dgm.detach().to(dtype=dgm.dtype, device=dgm.device)
    if len(dgm) + len(true_dgm) == 0:
        return constant(dgm.new_zeros(()))
    match = _optimal_matching(_host64(dgm), _host64(true_dgm), q)
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
        total = constant(total)
    if q == 1 or not bool(total > 0):  # total ** (1/q) has an infinite slope at 0: keep the exact 0 there
        return total
    return total ** (1.0 / q)
