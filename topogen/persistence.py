"""Differentiable Vietoris–Rips persistence (degrees 0 and 1) of a point cloud.

The combinatorics (which edge creates and which edge kills each homology class)
are computed once, without gradients, by giotto-ph. The diagram values are then
recomputed in torch as lengths of those *critical edges*, so a diagram is a
differentiable function of the point coordinates, on whatever device they live.

Zero-length bars (for instance from duplicate points) are dropped, as giotto-ph
and gudhi do by default; they lie on the diagonal and no regularizer of this
package depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Persistence", "vr_persistence", "edge_lengths", "as_point_tensor"]


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
        gradient history).

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
    return flat


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
        positive = length > 0
        # d|x_u - x_v| / dx_u = (x_u - x_v) / |x_u - x_v|, and 0 for a zero-length edge
        scale = torch.where(positive, grad / torch.where(positive, length, torch.ones_like(length)), 0.0)
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


def _check_max_dim(max_dim) -> int:
    if isinstance(max_dim, bool) or not isinstance(max_dim, (int, np.integer)) or int(max_dim) not in (0, 1):
        raise ValueError(f"max_dim must be 0 or 1, got {max_dim!r}")
    return int(max_dim)


@dataclass(frozen=True)
class Persistence:
    """Vietoris–Rips persistence of a point cloud with its critical edges.

    Attributes
    ----------
    points : torch.Tensor
        The ``(N, D)`` cloud the diagrams are recomputed from.
    max_dim : int
        Highest homology degree computed (0 or 1).
    death_edges0 : torch.Tensor
        ``(k0, 2)`` long tensor: the edge whose length is the death of each
        finite degree-0 bar (births are 0).
    birth_edges1, death_edges1 : torch.Tensor
        ``(k1, 2)`` long tensors: the edges giving birth and death of each
        finite degree-1 bar (empty when ``max_dim == 0``).
    n_infinite : tuple of int
        Number of infinite (essential) classes per degree ``0..max_dim``.
    distances : numpy.ndarray or None
        The float64 ``(N, N)`` distance matrix the pairs were computed from
        (no gradient), kept so callers need not compute it again; None for a
        cloud made by :meth:`with_points`.
    """

    points: torch.Tensor
    max_dim: int
    death_edges0: torch.Tensor
    birth_edges1: torch.Tensor
    death_edges1: torch.Tensor
    n_infinite: tuple
    distances: np.ndarray | None = None

    def _check_degree(self, dim) -> int:
        dim = _check_max_dim(dim)
        if dim > self.max_dim:
            raise ValueError(f"degree {dim} was not computed (max_dim={self.max_dim})")
        return dim

    def _diagrams(self, degrees) -> dict:
        """Diagrams of ``degrees`` from one batched gather of their critical edges."""
        parts = ([self.death_edges0] if 0 in degrees else []) + (
            [self.birth_edges1, self.death_edges1] if 1 in degrees else []
        )
        lengths = edge_lengths(self.points, torch.cat(parts))
        out = {}
        if 0 in degrees:
            k0 = len(self.death_edges0)
            death0, lengths = lengths[:k0], lengths[k0:]
            out[0] = torch.stack([torch.zeros_like(death0), death0], dim=1)
        if 1 in degrees:
            k1 = len(self.birth_edges1)
            out[1] = torch.stack([lengths[:k1], lengths[k1:]], dim=1)
        return out

    def diagram(self, dim: int) -> torch.Tensor:
        """Finite part of the degree-``dim`` diagram as a ``(k, 2)`` tensor.

        Rows are (birth, death), recomputed from the point coordinates, hence
        differentiable with respect to them; dtype and device follow
        ``points``.
        """
        if isinstance(dim, bool) or dim not in (0, 1):
            raise ValueError(f"dim must be 0 or 1, got {dim!r}")
        dim = self._check_degree(dim)
        return self._diagrams((dim,))[dim]

    def diagrams(self, max_dim: int | None = None) -> dict:
        """``{degree: diagram}`` for degrees ``0..max_dim`` (default: all computed), one batched gather."""
        max_dim = self.max_dim if max_dim is None else self._check_degree(max_dim)
        return self._diagrams(range(max_dim + 1))

    def with_points(self, points: torch.Tensor) -> "Persistence":
        """The same critical edges read off another cloud of the same size.

        Vietoris–Rips persistence is equivariant under scaling, so for
        ``points / c`` the critical edges are unchanged: use this to rescale a
        cloud without recomputing its persistence.
        """
        if points.shape[0] != self.points.shape[0]:
            raise ValueError(
                f"points must have {self.points.shape[0]} rows to reuse these edges, got {points.shape[0]}"
            )
        return Persistence(
            points.reshape(points.shape[0], -1),
            self.max_dim,
            self.death_edges0,
            self.birth_edges1,
            self.death_edges1,
            self.n_infinite,
        )

    def __len__(self) -> int:
        return int(self.points.shape[0])


def pairwise_distances(points: torch.Tensor) -> np.ndarray:
    """Dense float64 Euclidean distance matrix of an ``(N, D)`` tensor (no grad)."""
    x = points.detach().to(dtype=torch.float64)
    sq = (x * x).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    d2.clamp_(min=0.0)
    d2.fill_diagonal_(0.0)
    return d2.sqrt_().cpu().numpy()


def vr_persistence(points, max_dim: int = 1) -> Persistence:
    """Vietoris–Rips persistence of a point cloud, up to degree ``max_dim``.

    Parameters
    ----------
    points : torch.Tensor or numpy.ndarray
        ``(N, ...)`` cloud of N >= 2 points, flattened to ``(N, D)``; the
        metric is Euclidean. Gradients of :meth:`Persistence.diagram` flow back
        to this tensor.
    max_dim : {0, 1}
        Highest homology degree. ``0`` takes the fast path (degree 0 only).

    Returns
    -------
    Persistence
        Critical edges for every finite bar (coefficients Z/2) and the number
        of infinite classes per degree.

    Raises
    ------
    ValueError
        On invalid input (see :func:`as_point_tensor`) or ``max_dim`` not in
        {0, 1}.
    """
    from gph import ripser_parallel

    max_dim = _check_max_dim(max_dim)
    flat = as_point_tensor(points, check_finite=False)
    dist = pairwise_distances(flat)
    if not np.isfinite(dist).all():  # NaN/inf coordinates poison their rows
        if not bool(torch.isfinite(flat).all()):
            raise ValueError("points contains NaN or inf coordinates")
        raise ValueError("points are too large: their squared distances overflow float64")
    res = ripser_parallel(dist, metric="precomputed", maxdim=max_dim, coeff=2, return_generators=True)
    gens = res["gens"]
    death0 = np.asarray(gens[0], dtype=np.int64).reshape(-1, 3)[:, 1:]
    n_inf = [int(len(gens[2]))]
    if max_dim >= 1:
        g1 = np.asarray(gens[1][0], dtype=np.int64).reshape(-1, 4)
        # giotto-ph works in float32: drop pairs whose float64 length is zero.
        g1 = g1[dist[g1[:, 2], g1[:, 3]] > dist[g1[:, 0], g1[:, 1]]]
        birth1, death1 = g1[:, :2], g1[:, 2:]
        n_inf.append(int(len(gens[3][0])))
    else:
        birth1 = death1 = np.empty((0, 2), dtype=np.int64)
    # One host-to-device copy for all critical edges.
    edges = torch.from_numpy(np.concatenate([death0, birth1, death1])).to(flat.device)
    k0, k1 = len(death0), len(birth1)
    return Persistence(
        flat, max_dim, edges[:k0], edges[k0 : k0 + k1], edges[k0 + k1 :], tuple(n_inf), dist
    )
