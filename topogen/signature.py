"""The topological signature loss of Moor et al., "Topological Autoencoders" (ICML 2020).

For two clouds of the same size whose rows correspond (row i of a latent batch
encodes row i of the input batch), with distance matrices A and A* (each
divided by its largest entry when ``normalize``) and persistence pairings π
and π* of the two clouds, the loss is

    ½ ‖A*[π*] − A[π*]‖² + ½ ‖A[π] − A*[π]‖²

summed over the requested degrees. In degree 0 a pairing selects each pair's
death edge (the entry of a distance matrix at that edge); in degrees 1 and 2 it
selects each pair's birth and death edges, and the selected value is
|A[death edge] − A[birth edge]|. Both terms read a distance matrix only at the
critical edges of one of the two clouds, so the loss makes the distances that
are topologically relevant in either space agree in the other.

This is the definition of Moor et al. (squared Euclidean norms).
torch-topological's ``SignatureLoss`` takes the norm itself,
½ ‖A*[π*] − A[π*]‖ + ½ ‖A[π] − A*[π]‖ (not squared), so its values differ
from these; ``benchmarks/bench_peers.py`` computes both and checks that the peer's
equals that norm read off this module's gather.

Everything is computed from the critical edges and the float64 distance
matrix that :class:`~topogen.persistence.Persistence` already keeps: one
batched gather of edge lengths per cloud, no second persistence computation.
Gradients flow to both clouds when both require them.
"""

from __future__ import annotations

import numpy as np
import torch

from .persistence import MAX_DIM, Persistence, as_point_tensor, pair_lengths, pairwise_distances, vr_persistence

__all__ = ["loss_signature", "signature_distance"]


def _check_dims(dims) -> tuple:
    if isinstance(dims, (int, np.integer)) and not isinstance(dims, bool):
        dims = (dims,)
    try:
        dims = tuple(dims)
    except TypeError:
        raise ValueError(f"dims must be a sequence of homology degrees, got {dims!r}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d <= MAX_DIM
                       for d in dims) or len(set(dims)) != len(dims):
        raise ValueError(f"dims must be distinct homology degrees in 0..{MAX_DIM}, got {dims!r}")
    return tuple(int(d) for d in dims)


def _pairing(pers: Persistence, dims) -> list:
    """``[(birth_edges or None, death_edges), ...]`` for each degree, as long tensors."""
    return [pers.edges(d) for d in dims]


def _longest_edge(pers: Persistence) -> torch.Tensor:
    d = pers.distances if pers.distances is not None else pairwise_distances(pers.points)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    return torch.tensor([[i, j]], dtype=torch.long)


def _select(points: torch.Tensor, pairings: list, longest: torch.Tensor | None) -> list:
    """Selected (normalized) distances of ``points`` at each pairing, one gather for all of them."""
    lengths, scale = pair_lengths(points, [pair for pairing in pairings for pair in pairing], longest)
    if scale is not None:
        scale = scale[0]
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # a cloud of identical points stays 0

    def select(birth, death):  # degree 0: the death edge; higher degrees: |death edge - birth edge|
        if scale is not None:
            birth, death = (None if birth is None else birth / scale), death / scale
        return death if birth is None else (death - birth).abs()

    selected = iter([select(birth, death) for birth, death in lengths])
    return [torch.cat([next(selected) for _ in pairing]) for pairing in pairings]


def signature_distance(pers: Persistence, true_pers: Persistence, dims=(0,), normalize: bool = True,
                       points: torch.Tensor | None = None, true_points: torch.Tensor | None = None) -> torch.Tensor:
    """The signature loss between two clouds from their precomputed persistence.

    ``points`` / ``true_points`` default to the clouds the persistence was
    computed from (``pers.points``); gradients flow to whichever requires them.
    See :func:`loss_signature`.
    """
    points = pers.points if points is None else as_point_tensor(points, "points")
    true_points = true_pers.points if true_points is None else as_point_tensor(true_points, "true_points")
    return _signature(pers, true_pers, _check_dims(dims), normalize, points, true_points)


def _signature(pers, true_pers, dims, normalize, points, true_points) -> torch.Tensor:
    """:func:`signature_distance` on validated, flattened clouds."""
    if len(points) != len(true_points):
        raise ValueError(f"the signature loss compares clouds whose rows correspond: got {len(points)} and "
                         f"{len(true_points)} points")
    if len(pers) != len(points) or len(true_pers) != len(true_points):
        raise ValueError("the persistence given does not belong to a cloud of this size")
    true_points = true_points.to(points)
    own, other = _pairing(pers, dims), _pairing(true_pers, dims)
    a_own, a_other = _select(points, [own, other], _longest_edge(pers) if normalize else None)
    b_own, b_other = _select(true_points, [own, other], _longest_edge(true_pers) if normalize else None)
    return 0.5 * ((b_other - a_other) ** 2).sum() + 0.5 * ((a_own - b_own) ** 2).sum()


def loss_signature(points, true_points, *, persistence=None, true_persistence=None, dims=(0,), normalize=True):
    """Topological signature loss (Moor et al., 2020) between two clouds whose rows correspond.

    Parameters
    ----------
    points, true_points : torch.Tensor
        ``(N, ...)`` clouds of the same size, row i of one matching row i of
        the other (e.g. a latent batch and its input batch). Gradients flow to
        both when both require them.
    persistence, true_persistence : Persistence, optional
        Their precomputed persistence (up to ``max(dims)``), so one
        computation serves several terms.
    dims : sequence of int
        Homology degrees whose pairings are used (default: degree 0, as in the
        paper).
    normalize : bool
        Divide each distance matrix by its largest entry (the loss is then
        invariant to rescaling either cloud).

    Returns
    -------
    torch.Tensor
        Scalar ``½ ‖A*[π*] − A[π*]‖² + ½ ‖A[π] − A*[π]‖²`` summed over ``dims``
        (squared norms, as Moor et al.; torch-topological's ``SignatureLoss``
        omits the square).

    Raises
    ------
    ValueError
        Clouds of different sizes, ``dims`` outside 0..2, or invalid points.
    """
    dims = _check_dims(dims)
    if points is None and persistence is None or true_points is None and true_persistence is None:
        raise ValueError("give each cloud or its precomputed persistence")
    # Each cloud is validated once: vr_persistence checks finiteness through its distance matrix, so only a
    # cloud whose persistence was given is checked here.
    if points is not None:
        points = as_point_tensor(points, "points", check_finite=persistence is not None)
    if true_points is not None:
        true_points = as_point_tensor(true_points, "true_points", check_finite=true_persistence is not None)
    if points is not None and true_points is not None and len(points) != len(true_points):
        raise ValueError(f"the signature loss compares clouds whose rows correspond: got {len(points)} and "
                         f"{len(true_points)} points")
    top = max(dims)
    if persistence is None:
        persistence = vr_persistence(points, max_dim=top)
    if true_persistence is None:
        true_persistence = vr_persistence(true_points, max_dim=top, name="true_points")
    for name, pers in (("persistence", persistence), ("true_persistence", true_persistence)):
        if not isinstance(pers, Persistence) or pers.max_dim < top:
            raise ValueError(f"{name} must be a Persistence computed up to degree {top}")
    points = persistence.points if points is None else points
    true_points = true_persistence.points if true_points is None else true_points
    return _signature(persistence, true_persistence, dims, normalize, points, true_points)
