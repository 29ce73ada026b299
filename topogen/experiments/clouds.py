"""Point clouds for the deformation experiments: generators and the paper's set-ups.

:func:`make_experiment` builds a start cloud, a target cloud and the
optimisation settings by name: :data:`EXPERIMENTS` holds the paper's three
2-D set-ups and :data:`EXPERIMENTS_3D` a 3-D one driven by voids (degree 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "clusters",
    "segments",
    "circle",
    "filled_ball",
    "sphere",
    "Experiment",
    "EXPERIMENTS",
    "EXPERIMENTS_3D",
    "ALL_EXPERIMENTS",
    "make_experiment",
]


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def clusters(centers, sizes, noise: float, seed: int = 0) -> torch.Tensor:
    """Points uniformly within ``±noise`` (per coordinate) of each center.

    Parameters
    ----------
    centers : (k, 2) array_like
    sizes : sequence of k ints
        Points per cluster.
    noise : float
        Half-width of the uniform noise box.
    seed : int

    Returns
    -------
    torch.Tensor
        ``(sum(sizes), 2)`` float64 cloud.
    """
    centers = torch.as_tensor(np.asarray(centers, dtype=np.float64))
    if centers.ndim != 2 or centers.shape[1] != 2 or len(centers) != len(sizes):
        raise ValueError("centers must be (k, 2) with one size per center")
    if any(int(s) < 1 for s in sizes) or not math.isfinite(noise) or noise < 0:
        raise ValueError("sizes must be positive and noise finite and >= 0")
    gen = _generator(seed)
    parts = [c + (torch.rand(int(s), 2, generator=gen, dtype=torch.float64) * 2 - 1) * noise
             for c, s in zip(centers, sizes, strict=True)]
    return torch.cat(parts)


def segments(n_per_segment: int = 32, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Two noisy segments: a vertical one and a slanted one beside it.

    The vertical segment runs from (0, -4) to (0, 4); the slanted one from
    (2, -4) to (6, 4). Each point gets uniform noise ``±noise``.
    """
    gen = _generator(seed)
    t = torch.linspace(0, 1, n_per_segment, dtype=torch.float64)
    vertical = torch.stack([torch.zeros_like(t), -4 + 8 * t], 1)
    slanted = torch.stack([2 + 4 * t, -4 + 8 * t], 1)
    cloud = torch.cat([vertical, slanted])
    return cloud + (torch.rand(cloud.shape, generator=gen, dtype=torch.float64) * 2 - 1) * noise


def circle(n: int = 100, radius: float = 5.0) -> torch.Tensor:
    """``n`` points evenly spaced on a circle of the given radius."""
    theta = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    return radius * torch.stack([torch.cos(theta), torch.sin(theta)], 1)


def filled_ball(n: int = 80, radius: float = 1.0, seed: int = 0) -> torch.Tensor:
    """``n`` points uniform in a 3-D ball (a noisy filled ball: no void at any scale worth the name)."""
    gen = _generator(seed)
    direction = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm(dim=1, keepdim=True)
    r = torch.rand(n, 1, generator=gen, dtype=torch.float64) ** (1 / 3)
    return radius * r * direction


def sphere(n: int = 80, radius: float = 1.5) -> torch.Tensor:
    """``n`` points evenly spread on a sphere (Fibonacci lattice): one void."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    phi = torch.arccos(1 - 2 * i / n)
    theta = math.pi * (1 + math.sqrt(5)) * i
    return radius * torch.stack([torch.cos(theta) * torch.sin(phi), torch.sin(theta) * torch.sin(phi),
                                 torch.cos(phi)], 1)


@dataclass(frozen=True)
class Experiment:
    """A start cloud, a target cloud and the optimisation settings (the paper's for its three).

    ``weights`` is None for the paper's experiments (the caller's weights
    apply) and the experiment's own terms otherwise.
    """

    name: str
    title: str
    start: torch.Tensor
    target: torch.Tensor
    steps: int
    lr: float
    weights: dict | None = None


def make_experiment(name: str, seed: int = 0) -> Experiment:
    """A deformation experiment by name (:data:`ALL_EXPERIMENTS`), clouds drawn with ``seed``.

    * ``three_clusters``, ``four_clusters``, ``circle``: the paper's three 2-D
      experiments;
    * ``ball_to_sphere``: 80 points uniform in a ball of radius 1 (no void)
      toward 80 points spread on a sphere of radius 1.5 (one void), by
      ``bottleneck0 + bottleneck2`` (3 000 Adam steps, lr 0.02).
    """
    if name == "three_clusters":
        start = clusters([(0, 0), (10, 0), (0, 20), (30, 30), (10, -25)], [10, 10, 10, 10, 24], 0.5, seed)
        target = torch.tensor([(5.0, 5.0), (10.0, 10.0), (20.0, 6.0)], dtype=torch.float64)
        return Experiment(name, "5 clusters → 3 clusters", start, target, 15000, 0.01)
    if name == "four_clusters":
        start = clusters([(0, 0), (10, 5)], [30, 34], 0.4, seed)
        target = clusters([(0, 0), (10, 0), (-5, 4), (8, 13)], [30, 20, 30, 48], 0.3, seed + 1)
        return Experiment(name, "2 clusters → 4 clusters", start, target, 2500, 0.05)
    if name == "circle":
        return Experiment(name, "2 segments → 1 loop", segments(32, 0.1, seed), circle(100, 5.0), 7500, 0.1)
    if name == "ball_to_sphere":
        # Degree 2 alone grows the largest small void of the ball; degree 0 keeps the points evenly spaced,
        # as on the target shell (without it the fallback push0 scatters the cloud).
        return Experiment(name, "filled ball → 1 void (sphere)", filled_ball(80, 1.0, seed), sphere(80, 1.5), 3000,
                          0.02, weights={"bottleneck0": 1.0, "bottleneck2": 1.0})
    raise ValueError(f"unknown experiment {name!r}; choose from {list(ALL_EXPERIMENTS)}")


#: The paper's experiments by name (see :func:`make_experiment`).
EXPERIMENTS = ("three_clusters", "four_clusters", "circle")
#: 3-D experiments driven by degree-2 terms (voids), beyond the paper.
EXPERIMENTS_3D = ("ball_to_sphere",)
#: Every experiment :func:`make_experiment` knows.
ALL_EXPERIMENTS = EXPERIMENTS + EXPERIMENTS_3D
