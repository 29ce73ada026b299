"""Paired training of VAE, TopoVAE and TopoVAE-Z.

All models of one seed start from identical weights, see identical batches in
identical order and (``noise="paired"``, the default) draw identical
reparameterization noise; they differ only in the topological term of the loss

    L = (BCE_sum + KLD) / B + topo / B

* ``vae``: no topological term;
* ``topovae``: ``TopologicalLoss`` between the reconstructed batch and the
  input batch, each image a 784-D point;
* ``topovae_z``: ``TopologicalLoss`` between the latent batch (posterior means)
  and the input batch. The two clouds live at different scales (10-D latents,
  784-D pixels), so each is divided by its own mean pairwise distance
  (``z_scale="mean_distance"``); ``topovae_z_raw`` is the same without that
  rescaling, kept to show what the choice does;
* ``topovae_sig``: the topological signature loss of Moor et al. (2020)
  (:func:`~topogen.signature.loss_signature`, degree-0 pairings, normalized
  distances) between the latent batch (posterior means) and the input batch,
  weight ``config.signature_weight`` (or a variant's own weights): a latent
  regularizer known to preserve topology, the positive control of the latent
  analysis.

The input batch's persistence is computed once per batch and shared by every
model (rescaling reuses its critical edges). Every step logs BCE, KLD and
each topological term.

``noise="sequential"`` reproduces the published training script instead: one
random stream from which the models draw their noise in turn, so two models
see *different* noise (same initial weights and batches). Two plain VAEs
trained that way measure how far noise alone moves a comparison (a placebo).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..losses import TopologicalLoss
from ..persistence import prefetch_persistence
from ..reproduce.progress import progress_bar
from ..validation import at_least
from ._trajectory import Lockstep, mean_pairwise_distance, vae_terms
from .inputs import from_edges
from .models import ConvVAE

__all__ = [
    "MODELS",
    "NOISE",
    "PAPER_WEIGHTS",
    "PUBLISHED_WEIGHTS",
    "TrainConfig",
    "RunLog",
    "batch_schedule",
    "train_paired",
    "first_step_gradients",
    "mean_pairwise_distance",
    "model_specs",
    "vae_terms",
]

#: Model variants :func:`train_paired` knows.
MODELS = ("vae", "topovae", "topovae_z", "topovae_z_raw", "topovae_sig")
#: Noise protocols: identical noise for every model, or one stream drawn in turn.
NOISE = ("paired", "sequential")
#: The write-up's weights: bottleneck0 and bottleneck1 at 15.
PAPER_WEIGHTS = (15.0, 15.0, 0.0, 0.0, 0.0, 0.0, 0.0)
#: The published training script's default weights (the two entropies join the bottlenecks).
PUBLISHED_WEIGHTS = (10.0, 10.0, 10.0, 10.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (the paper's: Adam, lr 5e-4, batch 128, weights [15, 15, 0, ...])."""

    steps: int = 300
    batch_size: int = 128
    lr: float = 5e-4
    weights: tuple = PAPER_WEIGHTS
    latent_dim: int = 10
    eval_at: tuple = (50, 100)
    device: str = "cpu"
    noise: str = "paired"
    signature_weight: float = 1.0  # weight of the signature loss of "topovae_sig"

    def __post_init__(self):
        if self.noise not in NOISE:
            raise ValueError(f"noise must be one of {NOISE}, got {self.noise!r}")
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("steps must be >= 1 and batch_size >= 2")
        if not (self.lr > 0 and np.isfinite(self.lr)):
            raise ValueError(f"lr must be finite and positive, got {self.lr}")
        TopologicalLoss(self.weights)  # validates the weights
        at_least("signature_weight", self.signature_weight, 0)


@dataclass
class RunLog:
    """Per-step logs and evaluations of one model trained with one seed."""

    model: str
    seed: int
    bce: np.ndarray
    kld: np.ndarray
    topo: dict
    batches: np.ndarray  # a checksum of each step's batch indices
    topo_grad: np.ndarray = None  # whether the topological term had a gradient path at each step
    evaluations: dict = field(default_factory=dict)  # step -> metrics dict
    state_dict: dict | None = None


def batch_schedule(n: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """Index batches for ``steps`` steps: successive seeded permutations, last partial batch dropped."""
    if n < batch_size:
        raise ValueError(f"the training split ({n}) is smaller than one batch ({batch_size})")
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    batches = []
    while len(batches) < steps:
        order = rng.permutation(n)
        batches.extend(order[i * batch_size : (i + 1) * batch_size] for i in range(per_epoch))
    return batches[:steps]


def model_specs(config: TrainConfig, models, variants: dict | None) -> dict:
    """``{name: (kind, weights)}`` of every model and variant, checked (``ValueError`` naming the problem)."""
    unknown = [m for m in models if m not in MODELS]
    if unknown or not (models or variants):
        raise ValueError(f"models must be a non-empty subset of {MODELS}, got {list(models)}")
    specs = {name: (name, {"signature0": config.signature_weight} if name == "topovae_sig" else config.weights)
             for name in models}
    for name, spec in (variants or {}).items():
        if name in specs or not (isinstance(spec, tuple) and len(spec) == 2 and spec[0] in MODELS):
            raise ValueError(f"variant {name!r} must be a new name mapped to (kind, weights) with kind in {MODELS}")
        specs[name] = spec
    return specs


def train_paired(data, seed: int, config: TrainConfig = TrainConfig(), models=("vae", "topovae", "topovae_z"),
                 evaluator=None, keep_weights: bool = False, progress: bool | None = None, variants: dict | None = None,
                 input_edges: list | None = None) -> dict:
    """Train each variant in ``models`` from the same initial weights on the same batches.

    Under paired noise the models share one trajectory (weights computed
    once) as long as their losses have the same gradient: a model whose
    topological term has no gradient path at a step takes exactly the plain
    VAE's step. At its first step with a gradient of its own a model goes on
    alone, from a copy of the weights, optimizer state and noise stream.
    Every result is bit-identical to training each model alone.

    Parameters
    ----------
    data : ImageData
        Training split used for the batches.
    seed : int
        Seeds the initial weights, the batch order and the noise.
    config : TrainConfig
    models : sequence of str
        Subset of :data:`MODELS`.
    evaluator : callable, optional
        ``evaluator(model) -> dict`` run after the steps in ``config.eval_at``
        and at the end (e.g. :class:`~topogen.experiments.metrics.Evaluator`).
    keep_weights : bool
        Keep the final ``state_dict`` in each log.
    progress : bool, optional
        Live progress bar (``tqdm``; default: on in an interactive session, off under the runner).
    variants : dict, optional
        Extra models ``{name: (kind, weights)}``: a variant of kind
        ``"topovae"``, ``"topovae_z"`` or ``"topovae_z_raw"`` with its own
        weights (a 7-list or a mapping), or a second plain VAE
        ``("vae", None)`` (the placebo of a noise control), trained
        alongside ``models``.
    input_edges : list, optional
        The input batches' persistence for every step, as
        :func:`~topogen.experiments.inputs.input_persistence` returns it (e.g. from its cache, shared by
        every model of the seed); computed on the fly in a background thread
        when None. Either way the results are identical.

    Returns
    -------
    dict
        ``{model: RunLog}``.
    """
    specs = model_specs(config, models, variants)
    device = torch.device(config.device)
    torch.manual_seed(seed)
    init = ConvVAE(latent_dim=config.latent_dim).state_dict()
    init = {k: v.clone() for k, v in init.items()}
    batches = batch_schedule(len(data.train_x), config.batch_size, config.steps, seed)
    checksums = np.array([int(np.sum(b.astype(np.int64) * (np.arange(len(b)) + 1)) % (2**61 - 1)) for b in batches])
    losses = {name: TopologicalLoss(w) for name, (kind, w) in specs.items() if kind != "vae"}
    max_dim = max((loss.max_dim for loss in losses.values()), default=0)
    eval_at = sorted({s for s in config.eval_at if 0 < s <= config.steps} | {config.steps})
    n = config.steps
    logs = {name: RunLog(name, seed, np.zeros(n), np.zeros(n),
                         {k: np.zeros(n) for k in losses[name].weights} if name in losses else {}, checksums,
                         np.zeros(n, dtype=bool)) for name in specs}
    lockstep = Lockstep(specs, losses, logs, init, config, seed)
    bar = progress_bar(n, f"seed {seed}", enabled=progress)
    # Lockstep: every model takes step t before any takes step t + 1, so the input
    # batch's persistence is computed once per batch.
    stream = (data.train_x[torch.from_numpy(idx)].to(device) for idx in batches)
    for step, (x, input_pers) in enumerate(_with_input_persistence(stream, losses, input_edges, n, max_dim)):
        lockstep.step(x, input_pers, step)
        if evaluator is not None and step + 1 in eval_at:
            lockstep.evaluate(evaluator, step + 1)
        bar.update(1)
    bar.close()
    if keep_weights:
        lockstep.keep_weights()
    return logs


def _with_input_persistence(stream, losses: dict, input_edges, n: int, max_dim: int):
    """``(x, persistence)`` per batch: None without topological terms, else given or computed ahead.

    The input batch's persistence does not depend on the models: from ``input_edges`` (a cache), or computed
    ahead in a background thread.
    """
    if not losses:
        return ((x, None) for x in stream)
    if input_edges is not None:
        if len(input_edges) != n or any(e["max_dim"] != max_dim for e in input_edges):
            raise ValueError(f"input_edges must hold the degree-{max_dim} persistence of each of the {n} batches")
        return ((x, from_edges(x.reshape(len(x), -1), e)) for x, e in zip(stream, input_edges, strict=True))
    return prefetch_persistence(stream, max_dim)


def first_step_gradients(data, seed: int, config: TrainConfig, models, variants: dict | None = None,
                         threads: int = 1) -> dict:
    """Whether each model's topological term has a gradient path at a seed's first step: ``{name: bool}``.

    It is the first step of :func:`train_paired` itself (``topo_grad[0]``),
    run under ``threads`` intra-op threads. Plain VAEs are False.
    :func:`~topogen.experiments.runs.seed_units` uses it to decide which models share a trajectory.
    """
    from ..reproduce.caching import fixed_threads

    with fixed_threads(threads):
        logs = train_paired(data, seed, replace(config, steps=1, eval_at=()), models, progress=False,
                            variants=variants)
    return {name: bool(log.topo_grad[0]) for name, log in logs.items()}
