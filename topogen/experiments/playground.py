"""An interactive deformation playground for Jupyter Lab (ipywidgets), and the plain calls behind it.

Choose a start cloud (clusters, a circle, a filled ball, or an array of your own),
a target (clusters, one loop, one void, or an array), the terms with their
weights, the learning rate and the number of steps, and press Run: the cloud
is deformed with a live progress bar, then its animation and its diagrams are
shown. Every Run is one call of :func:`playground_run`, which is one call of
:func:`~topogen.experiments.deformation.deform`, so the same thing runs headless
(under papermill) and gives the same bits::

    from topogen.experiments.playground import Playground
    pg = Playground(start="clusters", target="loop")
    pg            # the widgets, in a notebook
    pg.run()      # what the Run button does; returns the DeformationHistory
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from . import clouds
from .deformation import deform

__all__ = ["STARTS", "TARGETS", "start_cloud", "target_cloud", "parse_weights", "playground_run", "Playground"]

STARTS = ("clusters", "circle", "ball")
TARGETS = ("clusters", "loop", "void")


def _ring(k: int, radius: float) -> list:
    return [(radius * math.cos(2 * math.pi * i / k), radius * math.sin(2 * math.pi * i / k)) for i in range(k)]


def _check_size(n, k) -> tuple[int, int]:
    for name, value, low in (("n", n, 4), ("k", k, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if k > n:
        raise ValueError(f"k = {k} clusters need at least k points, got n = {n}")
    return int(n), int(k)


def _clusters(n: int, k: int, seed: int) -> torch.Tensor:
    sizes = [n // k + (i < n % k) for i in range(k)]
    return clouds.clusters(_ring(k, 8.0), sizes, 0.5, seed)


_MAKERS = {
    "clusters": lambda n, k, seed: _clusters(n, k, seed),
    "circle": lambda n, k, seed: clouds.circle(n, 5.0),
    "loop": lambda n, k, seed: clouds.circle(n, 5.0),
    "ball": lambda n, k, seed: clouds.filled_ball(n, 1.0, seed),
    "void": lambda n, k, seed: clouds.sphere(n, 1.5),
}


def _cloud(kind, n: int, k: int, seed: int, role: str, kinds: tuple) -> torch.Tensor:
    if not isinstance(kind, str):
        return _array(kind, role)
    n, k = _check_size(n, k)
    if kind not in kinds:
        raise ValueError(f"unknown {role} cloud {kind!r}; choose from {kinds} or pass an array")
    return _MAKERS[kind](n, k, seed)


def start_cloud(kind="clusters", n: int = 64, k: int = 2, seed: int = 0) -> torch.Tensor:
    """A start cloud: ``k`` noisy clusters on a ring, a circle (one loop), a filled 3-D ball, or ``kind`` itself
    when it is an ``(n, d)`` array."""
    return _cloud(kind, n, k, seed, "start", STARTS)


def target_cloud(kind="clusters", n: int = 64, k: int = 4, seed: int = 1) -> torch.Tensor:
    """A target: ``k`` clusters on a ring, one loop (a circle), one void (a sphere in 3-D), or ``kind`` itself
    when it is an ``(n, d)`` array."""
    return _cloud(kind, n, k, seed, "target", TARGETS)


def _array(values, name: str) -> torch.Tensor:
    cloud = torch.as_tensor(np.asarray(values, dtype=np.float64))
    if cloud.ndim != 2 or len(cloud) < 2 or cloud.shape[1] not in (2, 3):
        raise ValueError(f"the {name} cloud must be an (n, 2) or (n, 3) array of n >= 2 points, "
                         f"got shape {tuple(cloud.shape)}")
    return cloud


def parse_weights(text: str) -> dict:
    """``"bottleneck0=1, bottleneck2=0.5"`` → ``{"bottleneck0": 1.0, "bottleneck2": 0.5}`` (terms checked by
    :class:`~topogen.losses.TopologicalLoss`)."""
    weights = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        match = re.fullmatch(r"([a-z0-9_]+)\s*[=:]\s*([-+0-9.eE]+)", part)
        if not match:
            raise ValueError(f"weights must read 'term=weight, ...', got {part!r}")
        weights[match.group(1)] = float(match.group(2))
    if not weights:
        raise ValueError("give at least one term, e.g. 'bottleneck0=1, bottleneck1=1'")
    return weights


def playground_run(start, target, weights, *, steps: int = 300, lr: float = 0.05, seed: int = 0,
                   snapshots: int = 30, progress: bool | None = None):
    """One deformation of the playground: :func:`~topogen.experiments.deformation.deform` with these settings.

    Raises
    ------
    ValueError
        Anything ``deform`` rejects: start and target of different dimensions, bad terms, steps or lr.
    """
    return deform(start, target, weights, steps=steps, lr=lr, seed=seed, snapshots=snapshots, progress=progress)


class Playground:
    """The widgets: start, target, terms and weights, lr, steps, seed; Run deforms and shows the result.

    Keyword arguments set the initial values (``start``, ``n``, ``k_start``,
    ``target``, ``k_target``, ``weights``, ``lr``, ``steps``, ``seed``); arrays
    given as ``start_points`` / ``target_points`` replace the generated clouds.
    """

    def __init__(self, *, start: str = "clusters", n: int = 64, k_start: int = 2, target: str = "clusters",
                 k_target: int = 4, weights: str = "bottleneck0=1, bottleneck1=1", lr: float = 0.05,
                 steps: int = 300, seed: int = 0, start_points=None, target_points=None):
        import ipywidgets as w

        self.start_points, self.target_points = start_points, target_points
        style = {"description_width": "90px"}
        self.start = w.Dropdown(options=STARTS, value=start, description="start", style=style)
        self.k_start = w.IntSlider(value=k_start, min=1, max=8, description="clusters", style=style)
        self.target = w.Dropdown(options=TARGETS, value=target, description="target", style=style)
        self.k_target = w.IntSlider(value=k_target, min=1, max=8, description="clusters", style=style)
        self.n = w.IntSlider(value=n, min=8, max=200, description="points", style=style)
        self.weights = w.Text(value=weights, description="terms", style=style, layout=w.Layout(width="420px"))
        self.lr = w.FloatLogSlider(value=lr, base=10, min=-3, max=0, description="lr", style=style)
        self.steps = w.IntSlider(value=steps, min=10, max=5000, description="steps", style=style)
        self.seed = w.IntText(value=seed, description="seed", style=style)
        self.button = w.Button(description="Run", button_style="primary")
        self.output = w.Output()
        self.button.on_click(lambda _: self.run())
        self.widget = w.VBox([w.HBox([self.start, self.k_start]), w.HBox([self.target, self.k_target]),
                              w.HBox([self.n, self.seed]), self.weights, w.HBox([self.lr, self.steps]),
                              self.button, self.output])
        self.history, self.message = None, ""

    def settings(self) -> dict:
        """The current values as the arguments of :func:`start_cloud`, :func:`target_cloud` and the run."""
        return {"start": self.start.value, "target": self.target.value, "n": self.n.value,
                "k_start": self.k_start.value, "k_target": self.k_target.value, "weights": self.weights.value,
                "lr": self.lr.value, "steps": self.steps.value, "seed": self.seed.value}

    def clouds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The start and target clouds of the current settings."""
        s = self.settings()
        start = start_cloud(self.start_points if self.start_points is not None else s["start"], s["n"],
                            s["k_start"], s["seed"])
        target = target_cloud(self.target_points if self.target_points is not None else s["target"], s["n"],
                              s["k_target"], s["seed"] + 1)
        return start, target

    def run(self, show: bool = True):
        """Deform with the current settings (a progress bar while it runs), show the animation and the diagrams.

        ``show=False`` skips the drawing (a headless run). Returns the
        :class:`~topogen.experiments.deformation.DeformationHistory`, or None
        after showing what was wrong with the settings.
        """
        from IPython.display import Image, display

        from .plots import animation_gif, deformation_figure

        self.output.clear_output()
        self.message = ""
        with self.output:
            try:
                start, target = self.clouds()
                s = self.settings()
                hist = playground_run(start, target, parse_weights(s["weights"]), steps=s["steps"], lr=s["lr"],
                                      seed=s["seed"])
            except ValueError as err:
                self.message = f"cannot run: {err}"
                print(self.message)
                return None
            if show:
                import matplotlib.pyplot as plt

                display(Image(data=animation_gif(hist.clouds, hist.snapshot_steps, target=hist.target), format="gif"))
                fig = deformation_figure(hist, title=f"{s['start']} → {s['target']}")
                display(fig)
                plt.close(fig)
        self.history = hist
        return hist

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):  # (data, metadata)
            bundle = bundle[0]
        s = self.settings()
        return {**bundle, "text/plain": f"Playground: {s['start']} → {s['target']}, {s['weights']}, lr {s['lr']:g}, "
                                        f"{s['steps']} steps (open in Jupyter Lab to change the values and Run)"}
