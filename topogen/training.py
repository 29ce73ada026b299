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
model (rescaling reuses its critical edges). Every step logs BCE, KLD, each
topological term and the wall time.

``noise="sequential"`` reproduces the published training script instead: one
random stream from which the models draw their noise in turn, so two models
see *different* noise (same initial weights and batches). Two plain VAEs
trained that way measure how far noise alone moves a comparison (a placebo).
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from .losses import TopologicalLoss
from .models import ConvVAE
from .paths import progress_bar
from .persistence import Persistence, edge_lengths, pairwise_distances, vr_persistence
from .validation import at_least

__all__ = [
    "MODELS",
    "NOISE",
    "PUBLISHED_WEIGHTS",
    "TrainConfig",
    "RunLog",
    "batch_schedule",
    "train_paired",
    "train_paired_cached",
    "train_seeds",
    "train_many",
    "seed_units",
    "first_step_gradients",
    "cache_key",
    "mean_pairwise_distance",
    "prefetch_persistence",
    "input_persistence",
]

#: Model variants :func:`train_paired` knows.
MODELS = ("vae", "topovae", "topovae_z", "topovae_z_raw", "topovae_sig")
#: Noise protocols: identical noise for every model, or one stream drawn in turn.
NOISE = ("paired", "sequential")
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
    seconds: np.ndarray  # step wall time (a shared step's time plus the model's own topological term)
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


def prefetch_persistence(batches, max_dim: int = 1, ahead: int = 2):
    """Yield ``(batch, persistence)`` with upcoming batches' persistence computed in a background thread.

    The persistence of a real batch does not depend on the model, so it need
    not sit on the training step's critical path: while the caller trains on
    batch t, a worker thread computes :func:`~topogen.persistence.vr_persistence`
    of batches t+1 .. t+``ahead`` (giotto-ph and torch's distance matrix run
    outside the GIL). Results are identical to computing it in the loop.

    Parameters
    ----------
    batches : iterable of torch.Tensor
        ``(B, ...)`` batches (e.g. images, one point per image), consumed lazily.
    max_dim : int
        Highest homology degree (what the loss needs, e.g. ``TopologicalLoss.max_dim``).
    ahead : int
        Batches computed in advance (memory: ``ahead`` distance matrices).

    Examples
    --------
    >>> for x, pers in prefetch_persistence(loader_batches, max_dim=topo.max_dim):  # doctest: +SKIP
    ...     loss = topo(model(x).reshape(len(x), -1), None, true_persistence=pers)
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 1:
        raise ValueError(f"ahead must be a positive integer, got {ahead!r}")
    iterator = iter(batches)
    pending = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="topogen-prefetch") as pool:

        def submit() -> bool:
            try:
                x = next(iterator)
            except StopIteration:
                return False
            pending.append((x, pool.submit(vr_persistence, x.reshape(len(x), -1), max_dim)))
            return True

        for _ in range(ahead):
            if not submit():
                break
        while pending:
            x, future = pending.popleft()
            submit()
            yield x, future.result()


def mean_pairwise_distance(points: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over all pairs of rows (differentiable, NaN-safe)."""
    n = points.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=points.device)
    return edge_lengths(points.reshape(n, -1), iu.T).mean()


def _vae_terms(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce, kld


def _model_specs(config: TrainConfig, models, variants: dict | None) -> dict:
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


def train_paired(
    data,
    seed: int,
    config: TrainConfig = TrainConfig(),
    models=("vae", "topovae", "topovae_z"),
    evaluator=None,
    keep_weights: bool = False,
    progress: bool | None = None,
    variants: dict | None = None,
    input_edges: list | None = None,
) -> dict:
    """Train each variant in ``models`` from the same initial weights on the same batches.

    Under paired noise the models share one trajectory (weights computed
    once) as long as their losses have the same gradient: a model whose
    topological term has no gradient path at a step takes exactly the plain
    VAE's step. At its first step with a gradient of its own a model goes on
    alone, from a copy of the weights, optimizer state and noise stream.
    Every result is bit-identical to training each model alone; a model's
    logged step time is the shared step plus its own topological term.

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
        and at the end (e.g. :class:`~topogen.metrics.Evaluator`).
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
        :func:`input_persistence` returns it (e.g. from its cache, shared by
        every model of the seed); computed on the fly in a background thread
        when None. Either way the results are identical.

    Returns
    -------
    dict
        ``{model: RunLog}``.
    """
    specs = _model_specs(config, models, variants)
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
                         {k: np.zeros(n) for k in losses[name].weights} if name in losses else {}, np.zeros(n),
                         checksums, np.zeros(n, dtype=bool)) for name in specs}

    def start(members, noise):
        model = ConvVAE(latent_dim=config.latent_dim).to(device)
        model.load_state_dict(init)
        model.train()
        return _Trajectory(model, torch.optim.Adam(model.parameters(), lr=config.lr), noise, members)

    if config.noise == "sequential":  # one stream drawn in turn: every model follows its own trajectory
        shared = torch.Generator(device=device).manual_seed(seed + 1)
        trajectories = [start([name], shared) for name in specs]
    else:  # identical noise: all models share one trajectory until their losses' gradients differ
        trajectories = [start(list(specs), torch.Generator(device=device).manual_seed(seed + 1))]

    def topo_value(name, recon, mu, x, input_pers, per_batch):
        kind, topo, b = specs[name][0], losses[name], x.shape[0]
        if kind == "topovae":
            return topo(recon.reshape(b, -1), None, true_persistence=input_pers)
        if kind == "topovae_z":
            if "scaled" not in per_batch:  # same critical edges, rescaled cloud (once per batch)
                flat = x.reshape(b, -1)
                d = input_pers.distances  # computed once with the input's persistence
                if d is None:  # persistence from a cache: the same matrix, recomputed
                    d = pairwise_distances(flat)
                scale = float(d[np.triu_indices(b, 1)].mean())
                per_batch["scaled"] = input_pers.with_points(flat / scale)
            return topo(mu / mean_pairwise_distance(mu), None, true_persistence=per_batch["scaled"])
        # topovae_z_raw, topovae_sig: the latent means against the input batch as they are
        return topo(mu, None, true_persistence=input_pers)

    def advance(traj, x, input_pers, step, per_batch):
        """Step ``traj`` on batch ``x``; models whose loss gains a gradient of its own split off and step alone."""
        b = x.shape[0]
        noise_state = traj.noise.get_state() if len(traj.members) > 1 else None
        t0 = time.perf_counter()
        recon, mu, logvar, _ = traj.model(x, generator=traj.noise)
        bce, kld = _vae_terms(recon, x, mu, logvar)
        loss = (bce + kld) / b
        shared_seconds = time.perf_counter() - t0
        values, terms, own_seconds = {}, {}, {}
        for name in traj.members:
            t1 = time.perf_counter()
            if name in losses:
                values[name] = topo_value(name, recon, mu, x, input_pers, per_batch)
                terms[name] = losses[name].last_terms
            own_seconds[name] = time.perf_counter() - t1
        with_grad = [name for name in traj.members if name in values and values[name].requires_grad]
        # A term without a gradient path adds a constant: the model takes the plain VAE step. Those models stay;
        # if none does, the first model with a gradient keeps the trajectory. The others leave.
        keeper = with_grad[0] if len(with_grad) == len(traj.members) else None
        forks = [traj.split(name, noise_state, config.lr) for name in with_grad if name != keeper]
        t2 = time.perf_counter()
        if keeper is not None:
            loss = loss + values[keeper] / b
        traj.opt.zero_grad(set_to_none=True)
        loss.backward()
        traj.opt.step()
        shared_seconds += time.perf_counter() - t2
        for name in traj.members:  # a model's step time: the shared step plus its own topological term
            log = logs[name]
            log.seconds[step] = shared_seconds + own_seconds[name]
            log.bce[step] = bce.item() / b
            log.kld[step] = kld.item() / b
            if name in values:
                log.topo_grad[step] = values[name].requires_grad
                for k, v in terms[name].items():
                    log.topo[k][step] = v
        for fork in forks:  # one model each: it redoes this step alone, from the same weights and noise
            advance(fork, x, input_pers, step, per_batch)
        return forks

    bar = progress_bar(n, f"seed {seed}", enabled=progress)
    # Lockstep: every model takes step t before any takes step t + 1, so the input
    # batch's persistence is computed once per batch and step times are side by side.
    stream = (data.train_x[torch.from_numpy(idx)].to(device) for idx in batches)
    # The input batch's persistence does not depend on the models: given, or computed ahead in a background thread.
    if not losses:
        stream = ((x, None) for x in stream)
    elif input_edges is not None:
        if len(input_edges) != n or any(e["max_dim"] != max_dim for e in input_edges):
            raise ValueError(f"input_edges must hold the degree-{max_dim} persistence of each of the {n} batches")
        stream = ((x, _from_edges(x.reshape(len(x), -1), e)) for x, e in zip(stream, input_edges, strict=True))
    else:
        stream = prefetch_persistence(stream, max_dim)
    for step, (x, input_pers) in enumerate(stream):
        per_batch = {}
        for traj in list(trajectories):
            trajectories += advance(traj, x, input_pers, step, per_batch)
        if evaluator is not None and step + 1 in eval_at:
            for traj in trajectories:  # once per trajectory: its models have the same weights
                traj.model.eval()
                result = evaluator(traj.model)
                traj.model.train()
                for i, name in enumerate(traj.members):
                    logs[name].evaluations[step + 1] = result if i == 0 else copy.deepcopy(result)
        bar.update(1)
    bar.close()
    if keep_weights:
        for traj in trajectories:
            for name in traj.members:
                logs[name].state_dict = {k: v.detach().cpu().clone() for k, v in traj.model.state_dict().items()}
    return logs


class _Trajectory:
    """One set of weights with its optimizer and noise stream, followed by one or more models.

    Under paired noise every model of a seed starts from the same weights and
    draws the same noise, and a model whose topological term has no gradient
    path at a step takes exactly the plain VAE's step. Such models share one
    trajectory, computed once, until their first step with a gradient of
    their own; there a model leaves with a copy of the weights, the optimizer
    state and the noise stream (:meth:`split`) and redoes that step alone.
    Every model's weights, logs and evaluations are bit-identical to training
    it alone.
    """

    def __init__(self, model: ConvVAE, opt: torch.optim.Optimizer, noise: torch.Generator, members: list):
        self.model, self.opt, self.noise, self.members = model, opt, noise, members

    def split(self, name: str, noise_state: torch.Tensor, lr: float) -> _Trajectory:
        """``name`` leaves with copies of the weights and optimizer state, its noise rewound to ``noise_state``."""
        self.members.remove(name)
        model = copy.deepcopy(self.model)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        opt.load_state_dict(copy.deepcopy(self.opt.state_dict()))
        noise = torch.Generator(device=self.noise.device)
        noise.set_state(noise_state)
        return _Trajectory(model, opt, noise, [name])


# ----------------------------------------------------------------------------
# caching (weights and logs as tensors, loaded with weights_only=True)
# ----------------------------------------------------------------------------
def _to_tensors(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {k: _to_tensors(v) for k, v in value.items()}
    return value


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def _log_to_dict(log: RunLog) -> dict:
    out = {k: _to_tensors(getattr(log, k)) for k in ("bce", "kld", "topo", "seconds", "batches", "topo_grad")}
    out.update(model=log.model, seed=log.seed, evaluations=_to_tensors(log.evaluations), state_dict=log.state_dict)
    return out


def _log_from_dict(d: dict) -> RunLog:
    log = RunLog(d["model"], d["seed"], *(_to_numpy(d[k]) for k in ("bce", "kld", "topo", "seconds", "batches")),
                 topo_grad=_to_numpy(d["topo_grad"]))
    log.evaluations = {int(k): _to_numpy(v) for k, v in d["evaluations"].items()}
    log.state_dict = d["state_dict"]
    return log


def cache_key(data, seed: int, config: TrainConfig, models, extra: str = "", variants: dict | None = None) -> str:
    """A name for the results of one paired run.

    It covers the data (description and a checksum of the images), the seed,
    the settings, the models and variants, the evaluator (``extra``), torch's
    version and the source of every ``topogen`` module training depends on
    (:func:`~topogen.caching.code_fingerprint`): change any of them and the run
    is recomputed. Settings a run does not read are left out: plain VAEs are
    keyed without the topological weights, so every notebook that trains the
    same VAE finds it.
    """
    import hashlib

    from .caching import code_fingerprint

    h = hashlib.sha256()
    h.update(data.describe().encode())
    h.update(data.train_x[:32].numpy().tobytes())
    h.update(data.test_x[:32].numpy().tobytes())
    if all(m == "vae" for m in models) and all(v[0] == "vae" for v in (variants or {}).values()):
        config = replace(config, weights=PAPER_WEIGHTS, signature_weight=1.0)  # plain VAEs use neither
    variants = sorted((k, (v[0], None if v[1] is None else repr(v[1]))) for k, v in (variants or {}).items())
    # the thread count changes floating-point summation order, hence the trained weights
    h.update(repr((seed, config, tuple(models), variants, extra, torch.__version__, torch.get_num_threads())).encode())
    h.update(code_fingerprint("training", "metrics", "data").encode())  # the evaluator's code too
    return f"train-{data.dataset}-{data.source}-s{seed}-{h.hexdigest()[:16]}"


def _edges(pers: Persistence) -> dict:
    """The critical edges and infinite-class counts of ``pers`` (CPU tensors and ints: cacheable)."""
    edges = [pers.edges(d) for d in range(pers.max_dim + 1)]
    return {"max_dim": pers.max_dim, "n_infinite": list(pers.n_infinite),
            "edges": [e.cpu() for births, deaths in edges for e in (births, deaths) if e is not None]}


def _from_edges(points: torch.Tensor, edges: dict) -> Persistence:
    """The :class:`~topogen.persistence.Persistence` of ``points`` from its :func:`_edges` (no distance matrix)."""
    e = [t.to(device=points.device, dtype=torch.long) for t in edges["edges"]]
    if edges["max_dim"] == 0:
        e += [torch.empty((0, 2), dtype=torch.long, device=points.device)] * 2
    extra = {"birth_edges2": e[3], "death_edges2": e[4]} if edges["max_dim"] == 2 else {}
    return Persistence(points, edges["max_dim"], e[0], e[1], e[2], tuple(edges["n_infinite"]), None, **extra)


def input_persistence(data, seed: int, config: TrainConfig, max_dim: int, cache: bool = True) -> list[dict]:
    """The persistence of every input batch of a seed's run (critical edges), cached on disk.

    It depends only on the data, the seed's batch schedule and the degree, not
    on any model, so the units of one seed (each model trained alone, see
    :func:`seed_units`) and every notebook that trains on those batches share
    one computation instead of each recomputing it. The key covers the data,
    seed, batch size, steps, degree, device type, thread count, the torch and
    giotto-ph versions and the source of the modules involved; a broken file
    (unreadable, or not one entry of this degree per step) is recomputed, with
    a warning.

    Parameters
    ----------
    data : ImageData
    seed : int
        Seeds the batch schedule (:func:`batch_schedule`).
    config : TrainConfig
        Its batch size, steps and device are used.
    max_dim : int
        Highest homology degree (the largest ``TopologicalLoss.max_dim`` of the models).
    cache : bool
        Read and write the cache under ``.cache/``; False computes it afresh.

    Returns
    -------
    list of dict
        One entry per step, for :func:`train_paired`'s ``input_edges``.
    """
    import hashlib
    from importlib.metadata import version

    from . import caching
    from .paths import cache_dir

    h = hashlib.sha256()
    h.update(data.describe().encode())
    h.update(data.train_x[:32].numpy().tobytes())
    h.update(repr((seed, config.batch_size, config.steps, max_dim, torch.device(config.device).type,
                   torch.__version__, version("giotto-ph"), torch.get_num_threads())).encode())
    h.update(caching.code_fingerprint("training", "persistence").encode())
    path = cache_dir() / f"inputs-{data.dataset}-{data.source}-s{seed}-{h.hexdigest()[:16]}.pt"
    found = caching.load(path) if cache else None
    if found is not None:
        if isinstance(found, list) and len(found) == config.steps and all(
                isinstance(e, dict) and e.get("max_dim") == max_dim for e in found):
            return found
        warnings.warn(f"cache file {path.name} does not hold this run's input persistence; recomputing it",
                      stacklevel=2)
    device = torch.device(config.device)
    batches = batch_schedule(len(data.train_x), config.batch_size, config.steps, seed)
    stream = (data.train_x[torch.from_numpy(idx)].to(device) for idx in batches)
    # the training loop's own helper, so the edges come out exactly as they would inside the loop
    edges = [_edges(pers) for _, pers in prefetch_persistence(stream, max_dim)]
    if cache:
        caching.save(edges, path)
    return edges


def _input_degree(specs: dict) -> int | None:
    """Highest homology degree the terms of ``specs`` (``{name: (kind, weights)}``) need of the input batches.

    None when no model has a topological term (no input persistence is needed).
    """
    return max((TopologicalLoss(w).max_dim for kind, w in specs.values() if kind != "vae"), default=None)


def _unit_keys(data, seed: int, config: TrainConfig, models, variants, evaluator_key: str) -> dict:
    """``{file name: model names}``: under paired noise one cache file per model, so that any grouping finds it."""
    if config.noise == "sequential":  # the models share one noise stream: only the whole set is one result
        return {cache_key(data, seed, config, models, evaluator_key, variants): [*models, *(variants or {})]}
    keys = {cache_key(data, seed, config, (m,), evaluator_key): [m] for m in models}
    keys.update({cache_key(data, seed, config, (), evaluator_key, {name: spec}): [name]
                 for name, spec in (variants or {}).items()})
    return keys


def train_paired_cached(data, seed: int, config: TrainConfig = TrainConfig(), models=("vae", "topovae", "topovae_z"),
                        evaluator=None, evaluator_key: str = "", cache: bool = True, progress: bool | None = None,
                        variants: dict | None = None):
    """:func:`train_paired` with final weights, its results cached under ``.cache/``.

    Under paired noise each model is cached on its own (the key of training
    it alone), so a model trained once is found whatever it was trained
    with; the models not found train together. Cached files hold only
    tensors and plain types and are read with ``torch.load(...,
    weights_only=True)``; a truncated or unreadable file is recomputed (with
    a warning). Returns ``({model: RunLog}, cached)``, ``cached`` True when
    every model came from the cache.
    """
    from . import caching
    from .paths import cache_dir

    specs = _model_specs(config, models, variants)
    keys = _unit_keys(data, seed, config, models, variants, evaluator_key)
    found = {}
    for key, names in keys.items():
        payload = caching.load(cache_dir() / f"{key}.pt") if cache else None
        if payload is None:
            continue
        if isinstance(payload, dict) and set(payload) == set(names):
            found.update({name: _log_from_dict(d) for name, d in payload.items()})
        else:
            warnings.warn(f"cache file {key}.pt does not hold the run of {names}; recomputing it", stacklevel=2)
    missing = [name for name in specs if name not in found]
    if missing:
        todo = {name: specs[name] for name in missing}
        max_dim = _input_degree(todo)
        inputs = None if max_dim is None else input_persistence(data, seed, config, max_dim, cache=cache)
        logs = train_paired(data, seed, config, [m for m in models if m in todo], evaluator=evaluator,
                            keep_weights=True, progress=progress, input_edges=inputs,
                            variants={k: v for k, v in (variants or {}).items() if k in todo})
        found.update(logs)
        if cache:
            for key, names in keys.items():
                if any(name in logs for name in names):
                    caching.save({name: _log_to_dict(found[name]) for name in names}, cache_dir() / f"{key}.pt")
    return {name: found[name] for name in specs}, not missing


def _train_unit(data, seed, config, models, variants, evaluator, evaluator_key, cache, threads):
    """One unit of :func:`train_seeds` (module level, so joblib/Dask workers can import it)."""
    from .caching import fixed_threads

    with fixed_threads(threads):  # results must not depend on where (which process) a unit runs
        logs, hit = train_paired_cached(data, seed, config, models, evaluator=evaluator, evaluator_key=evaluator_key,
                                        cache=cache, progress=False, variants=variants)
    for log in logs.values():
        log.state_dict = None  # weights stay in the cache; do not ship them between processes
    return logs, hit


def first_step_gradients(data, seed: int, config: TrainConfig, models, variants: dict | None = None,
                         threads: int = 1) -> dict:
    """Whether each model's topological term has a gradient path at a seed's first step: ``{name: bool}``.

    It is the first step of :func:`train_paired` itself (``topo_grad[0]``),
    run under ``threads`` intra-op threads. Plain VAEs are False.
    :func:`seed_units` uses it to decide which models share a trajectory.
    """
    from .caching import fixed_threads

    with fixed_threads(threads):
        logs = train_paired(data, seed, replace(config, steps=1, eval_at=()), models, progress=False,
                            variants=variants)
    return {name: bool(log.topo_grad[0]) for name, log in logs.items()}


def seed_units(config: TrainConfig, models, variants: dict | None = None,
               first_gradient: dict | None = None) -> list[tuple[tuple, dict | None]]:
    """How one seed's paired run splits into independent units: ``[(models, variants), ...]``.

    Under ``noise="paired"`` every model of a seed depends only on the seed
    (initial weights, batches, its own identically seeded noise) and on the
    input batches' persistence, which is deterministic, so any split gives
    results bit-identical to the lockstep run of :func:`train_paired`, and
    each model is cached on its own (found by any later split). Without
    ``first_gradient`` each model is its own unit. With it
    (:func:`first_step_gradients`), the models without a gradient of their
    own at the first step (the VAE and, on MNIST, the bottleneck TopoVAEs)
    form one unit: they share the VAE's trajectory, computed once, until
    their first step with a gradient. Each other model is its own unit.
    Under ``noise="sequential"`` the models read one noise stream in turn, so
    the seed stays one unit.
    """
    if config.noise == "sequential":
        return [(tuple(models), variants)]
    variants = variants or {}
    if first_gradient is None:
        return [((m,), None) for m in models] + [((), {name: spec}) for name, spec in variants.items()]
    unknown = set(first_gradient) ^ {*models, *variants}
    if unknown:
        raise ValueError(f"first_gradient must name every model and variant, mismatched: {sorted(unknown)}")
    shared = (tuple(m for m in models if not first_gradient[m]),
              {k: v for k, v in variants.items() if not first_gradient[k]} or None)
    alone = [((m,), None) for m in models if first_gradient[m]] + [
        ((), {k: v}) for k, v in variants.items() if first_gradient[k]]
    return ([shared] if shared[0] or shared[1] else []) + alone


def train_seeds(data, seeds, config: TrainConfig = TrainConfig(), models=("vae", "topovae", "topovae_z"), *,
                variants: dict | None = None, evaluator=None, cache: bool = True, n_jobs: int = 1,
                backend: str = "loky", threads: int = 1, scheduler: str = "") -> tuple[list, list]:
    """Paired runs of several seeds, as independent units of :func:`topogen.sweep.run_sweep`.

    The units are :func:`seed_units`: under paired noise, per seed, the
    models without a gradient of their own at the first step
    (:func:`first_step_gradients`) share one unit and the VAE's trajectory,
    and every other model is a unit of its own; each model is cached on its
    own. Every unit trains with ``threads``
    intra-op threads wherever it runs, so the results are identical for any
    ``n_jobs`` and backend (a serial run, parallel processes, or a Dask
    cluster: ``scheduler="tcp://HOST:8786"``).

    Returns
    -------
    runs : list of dict
        ``{model: RunLog}`` per seed (without weights), ``models`` then ``variants``.
    cached : list of bool
        Whether each seed came entirely from the cache.
    """
    job = dict(seeds=seeds, config=config, models=models, variants=variants)
    return train_many(data, [job], evaluator=evaluator, cache=cache, n_jobs=n_jobs, backend=backend,
                      threads=threads, scheduler=scheduler)[0]


def train_many(data, jobs, *, evaluator=None, cache: bool = True, n_jobs: int = 1, backend: str = "loky",
               threads: int = 1, scheduler: str = "") -> list[tuple[list, list]]:
    """Several :func:`train_seeds` calls as one sweep: ``[(runs, cached), ...]``, one pair per job.

    Each job is a dict with ``seeds`` and optionally ``config``, ``models``
    and ``variants`` (the arguments of :func:`train_seeds`). All their units
    go to the workers together, so a job's last unit does not leave the other
    workers idle before the next job starts, and a model that two jobs ask
    for (the same run: seed, settings, weights) is trained once. The results
    are those of separate calls.
    """
    from .caching import fixed_threads
    from .paths import cache_dir
    from .sweep import run_sweep

    key = getattr(evaluator, "key", "")
    units, owners, aliases, order = [], [], [], []
    scheduled = {}  # cache key of a model's run -> (owner, name) of the unit that trains it
    for j, job in enumerate(jobs):
        unknown = set(job) - {"seeds", "config", "models", "variants"}
        if unknown or "seeds" not in job:
            raise ValueError(f"job {j} must give seeds and may give config, models, variants; got {sorted(job)}")
        config = job.get("config") or TrainConfig()
        models, variants = tuple(job.get("models", ("vae", "topovae", "topovae_z"))), job.get("variants") or {}
        _model_specs(config, models, variants)  # checked here: split into units, a clash of names would go unseen
        order.append([*models, *variants])  # each seed's runs in this order, as separate calls return them
        for s in map(int, job["seeds"]):
            with fixed_threads(threads):  # the keys the units will use
                keys = _unit_keys(data, s, config, models, variants, key)
            fresh = set()
            for k, names in keys.items():
                if config.noise == "paired" and k in scheduled:  # one model, already trained by an earlier job
                    aliases.append(((j, s), names[0], scheduled[k]))
                else:
                    scheduled[k] = ((j, s), names[0])
                    fresh.update(names)
            fresh_models = tuple(m for m in models if m in fresh)
            fresh_variants = {k: v for k, v in variants.items() if k in fresh}
            if not fresh:
                continue
            probe = None  # which models can share a trajectory; not needed when all of them are cached
            if config.noise == "paired" and not (cache and all(
                    (cache_dir() / f"{k}.pt").is_file() for k, names in keys.items() if names[0] in fresh)):
                probe = first_step_gradients(data, s, config, fresh_models, fresh_variants, threads=threads)
            for unit_models, unit_variants in seed_units(config, fresh_models, fresh_variants or None, probe):
                units.append(dict(data=data, seed=s, config=config, models=unit_models, variants=unit_variants,
                                  evaluator=evaluator, evaluator_key=key, cache=cache, threads=threads))
                owners.append((j, s))
    # the units sharing a trajectory are the longest (at most one run per model): they start first
    cost = [u["config"].steps * (len(u["models"]) + len(u["variants"] or {})) for u in units]
    out = run_sweep(_train_unit, units, n_jobs=n_jobs, backend=backend, cache=False, scheduler=scheduler, cost=cost)
    runs = {(j, int(s)): {} for j, job in enumerate(jobs) for s in job["seeds"]}
    hits = dict.fromkeys(runs, True)
    for owner, (logs, hit) in zip(owners, out, strict=True):
        runs[owner].update(logs)
        hits[owner] = hits[owner] and hit
    for owner, name, (source, source_name) in aliases:
        runs[owner][name] = copy.deepcopy(runs[source][source_name])
        hits[owner] = hits[owner] and hits[source]
    return [([{name: runs[j, int(s)][name] for name in order[j]} for s in job["seeds"]],
             [hits[j, int(s)] for s in job["seeds"]]) for j, job in enumerate(jobs)]
