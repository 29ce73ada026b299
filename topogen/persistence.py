"""Differentiable Vietoris–Rips persistence (degrees 0, 1 and 2) of a point cloud.

The combinatorics (which edge creates and which edge kills each homology class) are computed once, without gradients,
by giotto-ph. The diagram values are then recomputed in torch as lengths of those *critical edges*, so a diagram is a
differentiable function of the point coordinates, on whatever device they live.

Zero-length bars are dropped, as giotto-ph and gudhi do by default, wherever the distance matrix resolves them (see
:func:`pairwise_distances`): copies of a point can leave zero-length bars, such as (0, 0) in degree 0. They lie on the
diagonal and no diagram term of this package depends on them.

Half-precision clouds (float16, bfloat16, as under ``torch.autocast``) are computed in float32, as PyTorch's autocast
computes its losses: the diagram summaries cancel catastrophically in 8 to 11 bits (a scale-space distance off by an
order of magnitude). The diagrams and every loss are then float32, and gradients reach the half-precision tensor.

Degree 2 (voids) is computed only when asked for (``max_dim=2``): its cost grows with the triangles, roughly N³.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import chain

import numpy as np
import torch

__all__ = ["Persistence", "vr_persistence", "edge_lengths", "pair_lengths", "as_point_tensor", "pairwise_distances",
           "MAX_DIM", "prefetch_persistence"]

#: Highest homology degree :func:`vr_persistence` computes.
MAX_DIM = 2


def as_point_tensor(points, name: str = "points", check_finite: bool = True) -> torch.Tensor:
    """Validate a point cloud and return it as an ``(N, D)`` floating tensor.

    Parameters
    ----------
    points : torch.Tensor or numpy.ndarray
        ``(N, ...)`` array of N points; trailing dimensions are flattened, so a
        batch of images ``(N, 1, 28, 28)`` becomes ``(N, 784)``.
    name : str
        Name used in error messages.
    check_finite : bool
        Check for NaN/inf (callers that check a derived quantity skip it).

    Returns
    -------
    torch.Tensor
        ``(N, D)`` view of the input (numpy input becomes float64, sharing no
        gradient history; float16 and bfloat16 become a float32 copy through
        which gradients flow back).

    Raises
    ------
    ValueError
        For non-array input, 0-d or 1-d arrays, fewer than 2 points, zero
        features, non-floating dtypes, or NaN/inf coordinates.
    """
    if isinstance(points, np.ndarray):
        if not np.issubdtype(points.dtype, np.floating):
            raise ValueError(f"{name} must have a floating dtype, got numpy {points.dtype}")
        points = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float64))
    elif not isinstance(points, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(points).__name__}")
    if not points.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {points.dtype}")
    if points.dim() < 2:
        raise ValueError(
            f"{name} must have shape (N, ...) with at least 2 dimensions (N points x features), "
            f"got shape {tuple(points.shape)}"
        )
    n = points.shape[0]
    if n < 2:
        raise ValueError(f"{name} must hold at least 2 points, got {n}")
    flat = points.reshape(n, -1)
    if flat.shape[1] == 0:
        raise ValueError(f"{name} has no coordinates (shape {tuple(points.shape)})")
    if check_finite and not bool(torch.isfinite(flat).all()):
        raise ValueError(f"{name} contains NaN or inf coordinates")
    return _at_least_float32(flat)


def _same_data(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` read the same memory the same way (so hold the same values)."""
    return (a.device == b.device and a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
            and a.data_ptr() == b.data_ptr())


def _at_least_float32(points: torch.Tensor) -> torch.Tensor:
    """float16 and bfloat16 points as float32 (see the module docstring), others as they are."""
    return points.float() if points.dtype in (torch.float16, torch.bfloat16) else points


class _EdgeLengths(torch.autograd.Function):
    """Lengths of a batch of edges as one autograd node (fast forward and backward)."""

    @staticmethod
    def forward(ctx, points, u, v):
        diff = points.index_select(0, u)
        diff.sub_(points.index_select(0, v))  # in place: one k x D temporary fewer
        length = torch.linalg.vector_norm(diff, dim=1)
        ctx.save_for_backward(diff, length, u, v)
        ctx.n_points = points.shape[0]
        return length

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        diff, length, u, v = ctx.saved_tensors
        # d|x_u - x_v| / dx_u = (x_u - x_v) / |x_u - x_v|, and 0 for a zero-length edge
        scale = (grad / length).masked_fill_(length == 0, 0.0)
        g = diff * scale[:, None]  # not in place: backward may run again (retain_graph)
        out = torch.zeros((ctx.n_points, diff.shape[1]), dtype=diff.dtype, device=diff.device)
        out.index_add_(0, u, g)
        out.index_add_(0, v, g, alpha=-1)
        return out, None, None


def edge_lengths(points: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Euclidean lengths of ``edges`` (``(k, 2)`` vertex indices), NaN-safe at 0.

    The gradient of a zero-length edge (duplicate points) is 0, not NaN.
    First-order differentiable (no double backward).
    """
    edges = edges.to(device=points.device, dtype=torch.long)
    return _EdgeLengths.apply(points, edges[:, 0].contiguous(), edges[:, 1].contiguous())


def pair_lengths(points: torch.Tensor, pairs: list, extra: torch.Tensor | None = None):
    """Lengths of the critical edges of persistence pairs, read off ``points`` in one batched gather.

    Parameters
    ----------
    points : torch.Tensor
        ``(N, D)`` cloud whose coordinates give the lengths (any cloud with rows matching the edges' vertex indices).
    pairs : list of tuple
        ``(birth_edges or None, death_edges)`` per group of pairs (see :meth:`Persistence.edges`).
    extra : torch.Tensor, optional
        ``(k, 2)`` further edges measured in the same gather.

    Returns
    -------
    lengths : list of tuple
        ``(birth_lengths or None, death_lengths)`` per entry of ``pairs``.
    extra_lengths : torch.Tensor or None
    """
    parts = [e for births, deaths in pairs for e in (births, deaths) if e is not None]
    parts = [e.to(points.device) for e in parts + ([extra] if extra is not None else [])]
    if len(parts) == 1:  # one diagram: a cat and a split would cost more than the gather itself
        flat = iter([edge_lengths(points, parts[0])])
    else:  # one gather for every part
        flat = iter(torch.split(edge_lengths(points, torch.cat(parts)), [len(e) for e in parts]))
    lengths = [(None if births is None else next(flat), next(flat)) for births, _ in pairs]
    return lengths, (next(flat) if extra is not None else None)


def _check_max_dim(max_dim, name: str = "max_dim") -> int:
    if isinstance(max_dim, bool) or not isinstance(max_dim, (int, np.integer)) or not 0 <= int(max_dim) <= MAX_DIM:
        raise ValueError(f"{name} must be 0, 1 or 2, got {max_dim!r}")
    return int(max_dim)


@dataclass(frozen=True)
class Persistence:
    """Vietoris–Rips persistence of a point cloud with its critical edges.

    Attributes
    ----------
    points : torch.Tensor
        The ``(N, D)`` cloud the diagrams are recomputed from.
    max_dim : int
        Highest homology degree computed (0, 1 or 2).
    death_edges0 : torch.Tensor
        ``(k0, 2)`` long tensor: the edge whose length is the death of each finite degree-0 bar (births are 0).
    birth_edges1, death_edges1 : torch.Tensor
        ``(k1, 2)`` long tensors: the edges giving birth and death of each finite degree-1 bar (empty when
        ``max_dim == 0``).
    n_infinite : tuple of int
        Number of infinite (essential) classes per degree ``0..max_dim``.
    distances : numpy.ndarray or None
        The float64 ``(N, N)`` distance matrix the pairs were computed from (no gradient), kept so callers need not
        compute it again; None for a cloud made by :meth:`with_points`.
    birth_edges2, death_edges2 : torch.Tensor or None
        ``(k2, 2)`` long tensors for the finite degree-2 bars (voids): the longest edge of the triangle that creates
        the void and of the tetrahedron that fills it. None unless ``max_dim == 2``.
    """

    points: torch.Tensor
    max_dim: int
    death_edges0: torch.Tensor
    birth_edges1: torch.Tensor
    death_edges1: torch.Tensor
    n_infinite: tuple
    distances: np.ndarray | None = None
    birth_edges2: torch.Tensor | None = None
    death_edges2: torch.Tensor | None = None

    def _check_degree(self, dim) -> int:
        dim = _check_max_dim(dim, "dim")
        if dim > self.max_dim:
            raise ValueError(f"degree {dim} was not computed (max_dim={self.max_dim})")
        return dim

    def edges(self, dim: int) -> tuple:
        """``(birth_edges, death_edges)`` of the finite degree-``dim`` bars (``birth_edges`` is None in degree 0)."""
        dim = self._check_degree(dim)
        if dim == 0:
            return None, self.death_edges0
        if dim == 1:
            return self.birth_edges1, self.death_edges1
        return self.birth_edges2, self.death_edges2

    def _diagrams(self, degrees) -> dict:
        """Diagrams of ``degrees`` from one batched gather of their critical edges."""
        lengths, _ = pair_lengths(self.points, [self.edges(dim) for dim in degrees])
        return {
            dim: torch.stack([torch.zeros_like(death) if birth is None else birth, death], dim=1)
            for dim, (birth, death) in zip(degrees, lengths, strict=True)
        }

    def diagram(self, dim: int) -> torch.Tensor:
        """Finite part of the degree-``dim`` diagram as a ``(k, 2)`` tensor.

        Rows are (birth, death), recomputed from the point coordinates, hence
        differentiable with respect to them; dtype and device follow
        ``points``.
        """
        dim = self._check_degree(dim)
        return self._diagrams((dim,))[dim]

    def diagrams(self, max_dim: int | None = None) -> dict:
        """``{degree: diagram}`` for degrees ``0..max_dim`` (default: all computed), one batched gather."""
        max_dim = self.max_dim if max_dim is None else self._check_degree(max_dim)
        return self._diagrams(range(max_dim + 1))

    def with_points(self, points: torch.Tensor) -> Persistence:
        """The same critical edges read off another cloud of the same size.

        Vietoris–Rips persistence is equivariant under scaling, so for
        ``points / c`` the critical edges are unchanged: use this to rescale a
        cloud without recomputing its persistence. The distance matrix is kept
        when ``points`` holds the very data of :attr:`points` (a view of it, or
        a detached copy sharing its memory).
        """
        if points.shape[0] != self.points.shape[0]:
            raise ValueError(
                f"points must have {self.points.shape[0]} rows to reuse these edges, got {points.shape[0]}"
            )
        flat = _at_least_float32(points.reshape(points.shape[0], -1))
        return replace(self, points=flat, distances=self.distances if _same_data(flat, self.points) else None)

    def __len__(self) -> int:
        return int(self.points.shape[0])


def pairwise_distances(points: torch.Tensor) -> np.ndarray:
    """Dense float64 Euclidean distance matrix of an ``(N, D)`` tensor (no grad).

    Computed as ``|x|² + |y|² - 2 x·y`` (one matrix product), which resolves a
    distance only to about ``1e-8 max |x|``: copies of a point come out that far
    apart, not 0. The critical edges are chosen on this matrix and the diagrams
    measured on the points, so a diagram is within about twice that (bottleneck
    distance) of the exact one: nothing for a cloud at its own scale around the
    origin, but for a small cloud far from the origin, translate it first
    (``x - x.mean(0)``).
    """
    x = points.detach().to(dtype=torch.float64)
    sq = (x * x).sum(dim=1)
    d2 = sq[:, None] + sq[None, :]
    d2.sub_(x @ x.T, alpha=2.0).clamp_(min=0.0).fill_diagonal_(0.0)  # d2 - 2 x·xᵀ: doubling is exact
    return d2.sqrt_().cpu().numpy()


def _generators(dist: np.ndarray, max_dim: int, enclosing_radius: float):
    """giotto-ph's pairs (vertex indices) for ``dist``, a finite matrix with a zero diagonal, coefficients Z/2.

    Calls the binding that ``ripser_parallel(dist, metric="precomputed", maxdim=max_dim, return_generators=True)``
    calls, with the same arguments (a test holds the two equal), and skips the float32 diagrams nothing here reads;
    ``enclosing_radius`` is the smallest row maximum of ``dist`` (the complex is a cone beyond it).
    """
    from gph.modules.gph_ripser import rips_dm
    from scipy.spatial.distance import squareform

    return rips_dm(squareform(dist.astype(np.float32), checks=False), np.zeros(len(dist), dtype=np.float32), 2,
                   max_dim, enclosing_radius, 1, True).flag_persistence_generators_by_dim


def _as_array(tuples: list, width: int) -> np.ndarray:
    """giotto-ph's list of index tuples as a ``(k, width)`` int64 array (flattened first: half the time of asarray)."""
    return np.fromiter(chain.from_iterable(tuples), dtype=np.int64, count=width * len(tuples)).reshape(-1, width)


def vr_persistence(points, max_dim: int = 1, *, name: str = "points") -> Persistence:
    """Vietoris–Rips persistence of a point cloud, up to degree ``max_dim``.

    Parameters
    ----------
    points : torch.Tensor or numpy.ndarray
        ``(N, ...)`` cloud of N >= 2 points, flattened to ``(N, D)``; the
        metric is Euclidean. Gradients of :meth:`Persistence.diagram` flow back
        to this tensor.
    max_dim : {0, 1, 2}
        Highest homology degree. ``0`` takes the fast path (degree 0 only);
        ``2`` (voids) is much more expensive and computed only when asked for.
    name : str
        What error messages call the cloud (a loss passes ``"true_points"``
        for its target batch).

    Returns
    -------
    Persistence
        Critical edges for every finite bar (coefficients Z/2) and the number
        of infinite classes per degree.

    Raises
    ------
    ValueError
        On invalid input (see :func:`as_point_tensor`) or ``max_dim`` not in
        {0, 1, 2}.
    """
    max_dim = _check_max_dim(max_dim)
    flat = as_point_tensor(points, name, check_finite=False)
    dist = pairwise_distances(flat)
    row_max = dist.max(axis=1)
    if not np.isfinite(row_max.max()):  # NaN/inf coordinates poison their rows
        if not bool(torch.isfinite(flat).all()):
            raise ValueError(f"{name} contains NaN or inf coordinates")
        raise ValueError(f"{name} are too large: their squared distances overflow float64")
    gens = _generators(dist, max_dim, float(row_max.min()))
    edges = [_as_array(gens.finite_0, 3)[:, 1:]]  # then births, deaths of 1..max_dim
    n_inf = [len(gens.essential_0)]
    for dim in range(1, max_dim + 1):
        g = _as_array(gens.finite_higher[dim - 1], 4)
        # giotto-ph works in float32: drop pairs whose float64 length is zero.
        g = g[dist[g[:, 2], g[:, 3]] > dist[g[:, 0], g[:, 1]]]
        edges += [g[:, :2], g[:, 2:]]
        n_inf.append(len(gens.essential_higher[dim - 1]))
    if max_dim == 0:
        edges += [edges[0][:0]] * 2  # no degree-1 bars
    edges = [torch.from_numpy(np.ascontiguousarray(e)).to(flat.device) for e in edges]
    extra = {"birth_edges2": edges[3], "death_edges2": edges[4]} if max_dim == 2 else {}
    return Persistence(flat, max_dim, edges[0], edges[1], edges[2], tuple(n_inf), dist, **extra)


def prefetch_persistence(batches, max_dim: int = 1, ahead: int = 2):
    """Yield ``(batch, persistence)`` with upcoming batches' persistence computed in a background thread.

    The persistence of a real batch does not depend on the model, so it need not sit on the training step's critical
    path: while the caller trains on batch t, a worker thread computes :func:`vr_persistence` of batches
    t+1 .. t+``ahead`` (giotto-ph and the distance matrix run outside the GIL). Results are identical to computing it
    in the loop.

    Parameters
    ----------
    batches : iterable of torch.Tensor
        ``(B, ...)`` batches (e.g. images, one point per image), consumed lazily.
    max_dim : int
        Highest homology degree (what the loss needs, e.g. ``TopologicalLoss.max_dim``).
    ahead : int
        Batches computed in advance (memory: ``ahead`` distance matrices).

    Raises
    ------
    ValueError
        For ``ahead`` < 1, a batch that is not an array, or, when its turn
        comes, a batch :func:`vr_persistence` rejects (the batches before it
        are delivered).

    Examples
    --------
    >>> for x, pers in prefetch_persistence(loader_batches, max_dim=topo.max_dim):  # doctest: +SKIP
    ...     loss = topo(model(x).reshape(len(x), -1), None, true_persistence=pers)
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 1:
        raise ValueError(f"ahead must be a positive integer, got {ahead!r}")
    iterator = iter(batches)
    pending = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="topogen-prefetch") as pool:

        def submit() -> bool:
            try:
                x = next(iterator)
            except StopIteration:
                return False
            if not isinstance(x, (torch.Tensor, np.ndarray)):
                raise ValueError(f"batches must be tensors (B, ...), got a {type(x).__name__}: take the images out of "
                                 "a data loader's (images, labels) pairs first")
            pending.append((x, pool.submit(vr_persistence, x.reshape(len(x), -1), max_dim)))
            return True

        for _ in range(ahead):
            if not submit():
                break
        while pending:
            x, future = pending.popleft()
            submit()
            yield x, future.result()
