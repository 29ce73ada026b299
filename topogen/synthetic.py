"""Point clouds and the deformation playground: a cloud reshaped by topology alone.

A learnable cloud (its coordinates are the parameters, Adam) is driven by
topological regularizers toward the persistence diagram of a target cloud.
:func:`deform` works on any cloud and target (2-D, 3-D, ...);
:data:`EXPERIMENTS` holds the paper's three 2-D set-ups and
:data:`EXPERIMENTS_3D` a 3-D one driven by voids (degree 2).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .losses import TopologicalLoss, bottleneck_distance, loss_push0
from .paths import progress_bar
from .persistence import Persistence, vr_persistence

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
    "FALLBACKS",
    "make_experiment",
    "DeformationHistory",
    "deform",
    "significance_thresholds",
    "count_features",
    "outcome",
    "run_experiment",
    "relative_cost",
]


# ----------------------------------------------------------------------------
# cloud generators
# ----------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------
# measuring the topology of a cloud
# ----------------------------------------------------------------------------
def significance_thresholds(target: Persistence, fraction: float = 0.25) -> tuple:
    """Scales at which the features of a cloud are counted, read off the target.

    A target bar is *significant* when its persistence is at least
    ``fraction`` times the largest persistence of the target (all degrees
    computed, at least 0 and 1). The threshold of degree d is half the
    smallest significant persistence in that degree, or ``fraction`` times
    the largest if degree d has none.

    Returns
    -------
    tuple of float
        One threshold per degree ``0..max(1, target.max_dim)``.
    """
    degrees = range(max(1, target.max_dim) + 1)
    dgms = {d: target.diagram(d).detach().cpu().numpy() for d in degrees}
    pers = {d: dgm[:, 1] - dgm[:, 0] for d, dgm in dgms.items()}
    top = max([p.max() for p in pers.values() if p.size] + [0.0])
    out = []
    for d in degrees:
        sig = pers[d][pers[d] >= fraction * top]
        out.append(0.5 * float(sig.min()) if sig.size else fraction * top)
    return tuple(out)


def count_features(pers: Persistence, thresholds: tuple) -> tuple:
    """Features alive at the given scales, one count per threshold: (clusters, loops[, voids]).

    A feature is a bar longer than its degree's threshold; clusters count the
    infinite degree-0 class too.
    """
    counts = []
    for d, threshold in enumerate(thresholds):
        dgm = pers.diagram(d).detach()
        counts.append((pers.n_infinite[0] if d == 0 else 0) + int(((dgm[:, 1] - dgm[:, 0]) > threshold).sum()))
    return tuple(counts)


# ----------------------------------------------------------------------------
# the deformation loop
# ----------------------------------------------------------------------------
@dataclass
class DeformationHistory:
    """What :func:`deform` recorded.

    Attributes
    ----------
    snapshot_steps : list of int
        Steps at which the cloud was recorded (0 and the last step included).
    clouds : list of (N, 2) numpy arrays
        The cloud at each snapshot.
    diagrams : list of dict
        ``{0: (k0, 2), 1: (k1, 2)}`` numpy diagrams at each snapshot.
    loss : numpy array
        Weighted loss at every step (before the update).
    terms : dict of numpy arrays
        Unweighted value of every active term at every step.
    fallback_steps : numpy array of bool
        Steps on which a term had no gradient path and ``loss_push0`` stood in.
    target : (M, 2) numpy array
    target_diagrams : dict
    seconds : float
        Wall time of the optimisation loop.
    steps_run : int
        Steps computed: fewer than ``settings["steps"]`` when the cloud
        stopped moving (no gradient path and no fallback), after which every
        step repeats the last one exactly and is recorded as such.
    same_as : tuple of str
        The fallback rules (:data:`FALLBACKS`, this run's own included) that
        chose the same objective as this run at every computed step: a run
        with any of them is this run, bit for bit.
    settings : dict
        Weights, steps, lr, seed and fallback rule, for the record.
    """

    snapshot_steps: list = field(default_factory=list)
    clouds: list = field(default_factory=list)
    diagrams: list = field(default_factory=list)
    loss: np.ndarray = None
    terms: dict = field(default_factory=dict)
    fallback_steps: np.ndarray = None
    target: np.ndarray = None
    target_diagrams: dict = field(default_factory=dict)
    seconds: float = 0.0
    steps_run: int = 0
    same_as: tuple = ()
    settings: dict = field(default_factory=dict)

    @property
    def final(self) -> np.ndarray:
        return self.clouds[-1]


#: Fallback rules of :func:`deform` (see its ``fallback`` parameter).
FALLBACKS = ("dominant", "step", "term", "none")


def _choices(values: dict, weights: dict) -> dict:
    """The objective each fallback rule builds from one step's term values, by rule.

    ``("terms",)``: the weighted sum of the terms; ``("push", names)``: the
    same sum with the named terms (no gradient path) replaced by
    ``loss_push0``; ``("push",)``: ``loss_push0`` alone. Two rules with the
    same choice compute the same objective by the same operations, hence the
    same update.
    """
    dead = tuple(k for k, v in values.items() if not v.requires_grad)
    choice = {rule: ("terms",) for rule in FALLBACKS}
    if len(dead) == len(values):  # no term has a gradient path (or there is no term)
        choice["step"] = ("push",)
    if dead:
        top = max(values, key=lambda k: weights[k] * float(values[k].detach()))
        if top in dead:
            choice["dominant"] = ("push", (top,))
        choice["term"] = ("push", dead)
    return choice


def deform(
    start,
    target,
    weights=(1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    *,
    steps: int = 1000,
    lr: float = 0.01,
    seed: int = 0,
    fallback: str = "dominant",
    snapshots: int = 60,
    loss_kwargs: dict | None = None,
    device: str = "cpu",
    progress: bool | None = None,
) -> DeformationHistory:
    """Move the points of ``start`` so that its persistence diagram approaches ``target``'s.

    Parameters
    ----------
    start : (N, D) array_like
        Initial cloud (2-D or 3-D, any D); its coordinates are the parameters
        (float64, Adam).
    target : (M, D) array_like
        Target cloud; only its diagram matters. Its persistence is computed once.
    weights : sequence of 7 floats or mapping
        Passed to :class:`~topogen.losses.TopologicalLoss` (default: bottleneck0
        + bottleneck1 at weight 1).
    steps : int
        Optimisation steps.
    lr : float
        Adam learning rate.
    seed : int
        Seeds torch before optimising (the loop itself is deterministic).
    fallback : {"dominant", "step", "term", "none"}
        What to do when a term cannot depend on the points (its bottleneck is
        realized by a target point matched to the diagonal, or its diagram is
        empty), so that only growing new bars could lower it:

        * ``"dominant"`` (default): when the largest weighted term is such a
          term, it is replaced by ``loss_push0`` at its weight; the other terms
          keep their gradients;
        * ``"step"``: ``loss_push0`` alone, only on steps where no term has a
          gradient path (the paper's rule);
        * ``"term"``: every such term is replaced by ``loss_push0``;
        * ``"none"``: such terms are left without gradient.
    snapshots : int
        Number of recorded clouds (evenly spaced, first and last included).
    loss_kwargs : dict, optional
        Hyperparameters for :class:`~topogen.losses.TopologicalLoss`.
    device : str
        Torch device of the optimisation.
    progress : bool, optional
        Live progress bar (``tqdm``; default: on in an interactive session, off under the runner).

    Returns
    -------
    DeformationHistory

    Raises
    ------
    ValueError
        For invalid clouds, steps, learning rate, snapshots or fallback.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    if isinstance(snapshots, bool) or not isinstance(snapshots, (int, np.integer)) or snapshots < 2:
        raise ValueError(f"snapshots must be an integer >= 2, got {snapshots!r}")
    torch.manual_seed(int(seed))
    x = torch.as_tensor(np.asarray(start, dtype=np.float64)).to(device).clone()
    y = torch.as_tensor(np.asarray(target, dtype=np.float64)).to(device)
    for name, cloud in (("start", x), ("target", y)):
        if cloud.ndim != 2 or x.ndim != 2 or cloud.shape[1] != x.shape[1] or cloud.shape[0] < 2:
            raise ValueError(f"{name} must be an (N, D) cloud with D = {x.shape[-1]} (the start's), "
                             f"got shape {tuple(cloud.shape)}")
    x.requires_grad_(True)
    loss_fn = TopologicalLoss(weights, **(loss_kwargs or {}))
    record = max(1, loss_fn.max_dim)  # degrees recorded at snapshots: 0, 1 and 2 when a term needs voids
    target_pers = vr_persistence(y, max_dim=record)
    opt = torch.optim.Adam([x], lr=float(lr))
    keep = set(np.unique(np.linspace(0, steps, snapshots).round().astype(int)).tolist())
    hist = DeformationHistory(
        target=y.cpu().numpy(),
        target_diagrams={d: target_pers.diagram(d).cpu().numpy() for d in range(record + 1)},
        settings={"weights": dict(loss_fn.weights), "steps": int(steps), "lr": float(lr), "seed": int(seed),
                  "fallback": fallback, "loss_kwargs": dict(loss_kwargs or {})},
    )
    losses = np.empty(steps)
    terms = {name: np.empty(steps) for name in loss_fn.weights}
    used_fallback = np.zeros(steps, dtype=bool)
    bar = progress_bar(steps, "deform", enabled=progress)
    same_as = set(FALLBACKS)

    def snapshot(step, pers):
        hist.snapshot_steps.append(step)
        hist.clouds.append(x.detach().cpu().numpy().copy())
        hist.diagrams.append({d: pers.diagram(d).detach().cpu().numpy() for d in range(record + 1)})

    t0 = time.perf_counter()
    for step in range(steps):
        # Higher degrees only where a term or a snapshot (all diagrams recorded) needs them.
        pers = vr_persistence(x, max_dim=record if step in keep else loss_fn.max_dim)
        if step in keep:
            snapshot(step, pers)
        values = loss_fn.terms(x, persistence=pers, true_persistence=target_pers)
        total = sum(loss_fn.weights[k] * v for k, v in values.items())
        losses[step] = float(total.detach())
        for k, v in values.items():
            terms[k][step] = float(v.detach())
        choices = _choices(values, loss_fn.weights)
        choice = choices[fallback]
        same_as &= {rule for rule, c in choices.items() if c == choice}
        objective = total
        if choice == ("push",):
            objective = loss_push0(x, persistence=pers)
        elif choice[0] == "push":
            push = loss_push0(x, persistence=pers)
            objective = sum(loss_fn.weights[k] * (push if k in choice[1] else v) for k, v in values.items())
        used_fallback[step] = choice != ("terms",)
        opt.zero_grad(set_to_none=True)
        if objective.requires_grad:
            objective.backward()
            opt.step()
        elif step + 1 < steps:
            # Nothing moved (no gradient path and no fallback): every later step sees this same cloud and Adam
            # state, so it would repeat this step exactly. Record the rest as such instead of recomputing it.
            rest = slice(step + 1, steps)
            losses[rest] = losses[step]
            for k in terms:
                terms[k][rest] = terms[k][step]
            used_fallback[rest] = used_fallback[step]
            later = sorted(k for k in keep if step < k < steps)
            if later:
                full = pers if step in keep else vr_persistence(x, max_dim=record)
                for k in later:
                    snapshot(k, full)
            hist.steps_run = step + 1
            bar.update(steps - step)
            break
        bar.update(1)
        if step % 100 == 0:
            bar.set_postfix(loss=f"{losses[step]:.4g}", refresh=False)
    bar.close()
    hist.seconds = time.perf_counter() - t0
    hist.steps_run = hist.steps_run or steps
    hist.same_as = tuple(rule for rule in FALLBACKS if rule in same_as)
    snapshot(steps, vr_persistence(x, max_dim=record))
    hist.loss, hist.terms, hist.fallback_steps = losses, terms, used_fallback
    return hist


def outcome(history: DeformationHistory) -> dict:
    """Distances to the target diagram and feature counts at the start and the end.

    Returns a dict with ``bottleneck<d>_start``, ``bottleneck<d>_end``,
    ``clusters/loops_target``, ``clusters/loops_start``, ``clusters/loops_end``
    for degrees 0 and 1, and the same for degree 2 (``voids_*``) when the
    history recorded it (a deformation driven by a degree-2 term).
    """
    top = max(history.target_diagrams)  # 1, or 2 for a run with degree-2 terms
    target = vr_persistence(torch.as_tensor(history.target), max_dim=top)
    thresholds = significance_thresholds(target)
    names = ("clusters", "loops", "voids")[: top + 1]
    out = {}
    for when, cloud in (("start", history.clouds[0]), ("end", history.clouds[-1])):
        pers = vr_persistence(torch.as_tensor(cloud), max_dim=top)
        for d in range(top + 1):
            out[f"bottleneck{d}_{when}"] = float(bottleneck_distance(pers.diagram(d), target.diagram(d)))
        out.update({f"{name}_{when}": c for name, c in zip(names, count_features(pers, thresholds), strict=True)})
    out.update({f"{name}_target": c for name, c in zip(names, count_features(target, thresholds), strict=True)})
    out["thresholds"] = thresholds
    return out


def run_experiment(
    name: str,
    *,
    seed: int = 0,
    steps_fraction: float = 1.0,
    weights=(1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    fallback: str = "dominant",
    snapshots: int = 60,
    loss_kwargs: dict | None = None,
    device: str = "cpu",
    threads: int = 1,
) -> tuple[Experiment, DeformationHistory, dict]:
    """One experiment from set-up to outcome: ``(experiment, history, outcome)``.

    A module-level, deterministic unit for :func:`topogen.sweep.run_sweep`
    (notebook 01 runs its experiments side by side; the trials of notebook
    02 build on it). ``steps_fraction`` scales the experiment's own number
    of steps; ``weights`` apply to the paper's experiments (a 3-D experiment
    brings its own terms); the deformation runs with ``threads`` torch
    threads, restored afterwards.
    """
    from .caching import fixed_threads

    exp = make_experiment(name, seed=seed)
    steps = _scaled_steps(exp, steps_fraction)
    with fixed_threads(threads):
        hist = deform(exp.start, exp.target, exp.weights or weights, steps=steps, lr=exp.lr, seed=seed,
                      fallback=fallback, snapshots=snapshots, loss_kwargs=loss_kwargs, device=device, progress=False)
        return exp, hist, outcome(hist)


def relative_cost(name: str, steps_fraction: float = 1.0, weights=(1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)) -> float:
    """A relative estimate of the work of :func:`run_experiment` (for ordering units, not a time).

    Each step computes Vietoris–Rips persistence of the start cloud's N points
    up to the highest degree d the terms need (at least 1, as the snapshots
    record loops), and the complex up to dimension d + 1 has on the order of
    N^(d + 1) simplices of its top dimension: steps × N^(d + 1). It orders
    the experiments as their measured times do (the 3-D experiment, 3 000 steps
    with voids on 80 points, costs more than 15 000 steps of a 2-D one).
    """
    exp = make_experiment(name)
    degree = max(1, TopologicalLoss(exp.weights or weights).max_dim)
    return float(_scaled_steps(exp, steps_fraction) * len(exp.start) ** (degree + 1))


def _scaled_steps(exp: Experiment, steps_fraction: float) -> int:
    """Steps of ``exp`` run at ``steps_fraction`` of its own (at least one): what :func:`run_experiment` runs."""
    return max(1, round(exp.steps * steps_fraction))
