"""Weights that give a topological term a stated share of the VAE's loss at initialization.

Notebook 04 weights the signature loss of TopoVAE-Sig so that at
initialization the weighted term is 10 % of BCE + KLD (the rule
``w = share × (BCE + KLD) / S₀``). The write-up's weights give TopoVAE's
bottleneck terms about 0.1 %. To compare kinds of regularizer at the same
budget, :func:`budget_weights` scales any model's weights by one factor so
that its weighted term takes the same share, read off the first step of
training itself (:func:`~topogen.experiments.training.train_paired`: the same
initial weights, first batch and noise, and for TopoVAE-Z the same rescaling).
"""

from __future__ import annotations

from dataclasses import replace

from ..losses import TopologicalLoss
from ..reproduce.caching import fixed_threads
from ..validation import at_least
from .training import TrainConfig, train_paired

__all__ = ["initial_share", "budget_weights"]


def initial_share(data, seed: int, config: TrainConfig, spec: tuple) -> float:
    """The weighted topological term over BCE + KLD (both summed over the batch) at the first step of training.

    Parameters
    ----------
    data : ImageData
    seed : int
        The seed whose initial weights, first batch and noise are used.
    config : TrainConfig
        Batch size, latent size and device are read.
    spec : tuple
        ``(kind, weights)`` as a variant of :func:`~topogen.experiments.training.train_paired` takes it, e.g.
        ``("topovae", [15, 15, 0, 0, 0, 0, 0])`` or ``("topovae_sig", {"signature0": 1.0})``.
    """
    with fixed_threads(1):
        log = train_paired(data, seed, replace(config, steps=1, eval_at=()), (), progress=False,
                           variants={"model": spec})["model"]
    weights = TopologicalLoss(spec[1]).weights
    if not weights:
        raise ValueError(f"the model {spec!r} has no topological term to weight")
    term = sum(w * log.topo[name][0] for name, w in weights.items())
    return float(term / ((log.bce[0] + log.kld[0]) * config.batch_size))


def budget_weights(data, seed: int, config: TrainConfig, spec: tuple, share: float, digits: int = 3) -> dict:
    """``spec``'s weights scaled by one factor so that its weighted term is ``share`` of BCE + KLD at the first step.

    The scaled weights are rounded to ``digits`` significant digits (as
    notebook 04 rounds TopoVAE-Sig's weight), returned as ``{term: weight}``.
    """
    share = at_least("share", share, 0)
    if share == 0:
        raise ValueError("share must be > 0, got 0")
    factor = share / initial_share(data, seed, config, spec)
    return {name: float(f"{w * factor:.{digits}g}") for name, w in TopologicalLoss(spec[1]).weights.items()}
