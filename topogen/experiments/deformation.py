"""The deformation loop: a cloud reshaped by topology alone.

A learnable cloud (its coordinates are the parameters, Adam) is driven by
topological regularizers toward the persistence diagram of a target cloud.
:func:`deform` works on any cloud and target (2-D, 3-D, ...);
:func:`run_experiment` runs one of the set-ups of
:mod:`topogen.experiments.clouds` from start to outcome.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..distances import bottleneck_distance
from ..losses import TopologicalLoss
from ..persistence import Persistence, vr_persistence
from ..reproduce.progress import progress_bar
from ..terms import loss_push0
from .clouds import Experiment, make_experiment

__all__ = [
    "FALLBACKS",
    "DeformationHistory",
    "deform",
    "significance_thresholds",
    "count_features",
    "outcome",
    "run_experiment",
]


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
    steps_run : int
        Steps computed: fewer than ``settings["steps"]`` when the cloud
        stopped moving (no gradient path and no fallback), after which every
        step repeats the last one exactly and is recorded as such.
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
    steps_run: int = 0
    settings: dict = field(default_factory=dict)

    @property
    def final(self) -> np.ndarray:
        return self.clouds[-1]

    def snapshot(self, step: int, x: torch.Tensor, pers: Persistence, record: int) -> None:
        """Record the cloud ``x`` and its diagrams of degrees ``0..record`` at ``step``."""
        self.snapshot_steps.append(step)
        self.clouds.append(x.detach().cpu().numpy().copy())
        self.diagrams.append({d: pers.diagram(d).detach().cpu().numpy() for d in range(record + 1)})

    def repeat_from(self, step: int, x: torch.Tensor, pers: Persistence | None, keep: set, record: int) -> None:
        """The cloud stopped moving at ``step``: record every later step as a repeat of it.

        ``pers``: the cloud's persistence up to degree ``record``, if already computed.
        """
        steps = len(self.loss)
        rest = slice(step + 1, steps)
        self.loss[rest] = self.loss[step]
        for values in self.terms.values():
            values[rest] = values[step]
        self.fallback_steps[rest] = self.fallback_steps[step]
        later = sorted(k for k in keep if step < k < steps)
        if later:
            pers = vr_persistence(x, max_dim=record) if pers is None else pers
            for k in later:
                self.snapshot(k, x, pers, record)
        self.steps_run = step + 1


#: Fallback rules of :func:`deform` (see its ``fallback`` parameter).
FALLBACKS = ("dominant", "step", "term", "none")


def _choice(values: dict, weights: dict, fallback: str) -> tuple:
    """The objective the ``fallback`` rule builds from one step's term values.

    ``("terms",)``: the weighted sum of the terms; ``("push", names)``: the
    same sum with the named terms (no gradient path) replaced by
    ``loss_push0``; ``("push",)``: ``loss_push0`` alone.
    """
    dead = tuple(k for k, v in values.items() if not v.requires_grad)
    if fallback == "step" and len(dead) == len(values):  # no term has a gradient path (or there is no term)
        return ("push",)
    if fallback == "dominant" and dead:
        top = max(values, key=lambda k: weights[k] * float(values[k].detach()))
        if top in dead:
            return ("push", (top,))
    if fallback == "term" and dead:
        return ("push", dead)
    return ("terms",)


def _check_deform(steps, lr, fallback, snapshots) -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    if isinstance(snapshots, bool) or not isinstance(snapshots, (int, np.integer)) or snapshots < 2:
        raise ValueError(f"snapshots must be an integer >= 2, got {snapshots!r}")


def _clouds(start, target, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The start cloud (a float64 leaf to optimise) and the target, checked to be ``(N, D)`` of one D."""
    x = torch.as_tensor(np.asarray(start, dtype=np.float64)).to(device).clone()
    y = torch.as_tensor(np.asarray(target, dtype=np.float64)).to(device)
    for name, cloud in (("start", x), ("target", y)):
        if cloud.ndim != 2 or x.ndim != 2 or cloud.shape[1] != x.shape[1] or cloud.shape[0] < 2:
            raise ValueError(f"{name} must be an (N, D) cloud with D = {x.shape[-1]} (the start's), "
                             f"got shape {tuple(cloud.shape)}")
    return x.requires_grad_(True), y


def _objective(choice: tuple, values: dict, weights: dict, total, x, pers):
    """The tensor to minimise for ``choice`` (see :func:`_choice`)."""
    if choice == ("push",):
        return loss_push0(x, persistence=pers)
    if choice[0] == "push":
        push = loss_push0(x, persistence=pers)
        return sum(weights[k] * (push if k in choice[1] else v) for k, v in values.items())
    return total


def _step(hist, step: int, x, pers, loss_fn, target_pers, fallback: str, opt) -> bool:
    """One optimisation step, recorded in ``hist``; False when nothing could move (no gradient path)."""
    values = loss_fn.terms(x, persistence=pers, true_persistence=target_pers)
    total = sum(loss_fn.weights[k] * v for k, v in values.items())
    hist.loss[step] = float(total.detach())
    for k, v in values.items():
        hist.terms[k][step] = float(v.detach())
    choice = _choice(values, loss_fn.weights, fallback)
    objective = _objective(choice, values, loss_fn.weights, total, x, pers)
    hist.fallback_steps[step] = choice != ("terms",)
    opt.zero_grad(set_to_none=True)
    if not objective.requires_grad:
        return False
    objective.backward()
    opt.step()
    return True


def _optimise(hist, x, opt, loss_fn, target_pers, fallback: str, keep: set, record: int, progress) -> None:
    """The optimisation loop of :func:`deform`, recorded in ``hist``."""
    steps = len(hist.loss)
    bar = progress_bar(steps, "deform", enabled=progress)
    for step in range(steps):
        # Higher degrees only where a term or a snapshot (all diagrams recorded) needs them.
        pers = vr_persistence(x, max_dim=record if step in keep else loss_fn.max_dim)
        if step in keep:
            hist.snapshot(step, x, pers, record)
        if not _step(hist, step, x, pers, loss_fn, target_pers, fallback, opt) and step + 1 < steps:
            # Nothing moved (no gradient path and no fallback): every later step sees this same cloud and Adam
            # state, so it would repeat this step exactly. Record the rest as such instead of recomputing it.
            hist.repeat_from(step, x, pers if step in keep else None, keep, record)
            bar.update(steps - step)
            break
        bar.update(1)
        if step % 100 == 0:
            bar.set_postfix(loss=f"{hist.loss[step]:.4g}", refresh=False)
    bar.close()


def deform(start, target, weights=(1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0), *, steps: int = 1000, lr: float = 0.01,
           seed: int = 0, fallback: str = "dominant", snapshots: int = 60, loss_kwargs: dict | None = None,
           device: str = "cpu", progress: bool | None = None) -> DeformationHistory:
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
    _check_deform(steps, lr, fallback, snapshots)
    torch.manual_seed(int(seed))
    x, y = _clouds(start, target, device)
    loss_fn = TopologicalLoss(weights, **(loss_kwargs or {}))
    record = max(1, loss_fn.max_dim)  # degrees recorded at snapshots: 0, 1 and 2 when a term needs voids
    target_pers = vr_persistence(y, max_dim=record)
    opt = torch.optim.Adam([x], lr=float(lr))
    keep = set(np.unique(np.linspace(0, steps, snapshots).round().astype(int)).tolist())
    settings = {"weights": dict(loss_fn.weights), "steps": int(steps), "lr": float(lr), "seed": int(seed),
                "fallback": fallback, "loss_kwargs": dict(loss_kwargs or {})}
    hist = DeformationHistory(target=y.cpu().numpy(), settings=settings, loss=np.empty(steps),
                              target_diagrams={d: target_pers.diagram(d).cpu().numpy() for d in range(record + 1)},
                              terms={name: np.empty(steps) for name in loss_fn.weights},
                              fallback_steps=np.zeros(steps, dtype=bool))
    _optimise(hist, x, opt, loss_fn, target_pers, fallback, keep, record, progress)
    hist.steps_run = hist.steps_run or steps
    hist.snapshot(steps, x, vr_persistence(x, max_dim=record), record)
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

    A module-level, deterministic unit for :func:`topogen.reproduce.sweep.run_sweep`
    (notebook 01 runs its experiments side by side; the trials of notebook
    02 build on it). ``steps_fraction`` scales the experiment's own number
    of steps; ``weights`` apply to the paper's experiments (a 3-D experiment
    brings its own terms); the deformation runs with ``threads`` torch
    threads, restored afterwards.
    """
    from ..reproduce.caching import fixed_threads

    exp = make_experiment(name, seed=seed)
    steps = max(1, round(exp.steps * steps_fraction))
    with fixed_threads(threads):
        hist = deform(exp.start, exp.target, exp.weights or weights, steps=steps, lr=exp.lr, seed=seed,
                      fallback=fallback, snapshots=snapshots, loss_kwargs=loss_kwargs, device=device, progress=False)
        return exp, hist, outcome(hist)
