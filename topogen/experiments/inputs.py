"""The persistence of a seed's input batches: computed once, cached, shared by every model and notebook.

The input batches' persistence depends only on the data, the seed's batch
schedule and the degree, never on a model. :func:`input_persistence` computes
the critical edges of every batch of a run once (off the critical path, in a
background thread) and caches them on disk; :func:`from_edges` rebuilds a
batch's :class:`~topogen.persistence.Persistence` from them without a
distance matrix.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch

from ..losses import TopologicalLoss
from ..persistence import Persistence, prefetch_persistence

if TYPE_CHECKING:
    from .training import TrainConfig

__all__ = ["input_persistence", "edges", "from_edges", "input_degree"]


def edges(pers: Persistence) -> dict:
    """The critical edges and infinite-class counts of ``pers`` (CPU tensors and ints: cacheable)."""
    pairs = [pers.edges(d) for d in range(pers.max_dim + 1)]
    return {"max_dim": pers.max_dim, "n_infinite": list(pers.n_infinite),
            "edges": [e.cpu() for births, deaths in pairs for e in (births, deaths) if e is not None]}


def from_edges(points: torch.Tensor, entry: dict) -> Persistence:
    """The :class:`~topogen.persistence.Persistence` of ``points`` from its :func:`edges` (no distance matrix)."""
    e = [t.to(device=points.device, dtype=torch.long) for t in entry["edges"]]
    if entry["max_dim"] == 0:
        e += [torch.empty((0, 2), dtype=torch.long, device=points.device)] * 2
    extra = {"birth_edges2": e[3], "death_edges2": e[4]} if entry["max_dim"] == 2 else {}
    return Persistence(points, entry["max_dim"], e[0], e[1], e[2], tuple(entry["n_infinite"]), None, **extra)


def input_persistence(data, seed: int, config: TrainConfig, max_dim: int, cache: bool = True) -> list[dict]:
    """The persistence of every input batch of a seed's run (critical edges), cached on disk.

    It depends only on the data, the seed's batch schedule and the degree, not
    on any model, so the units of one seed (each model trained alone, see
    :func:`~topogen.experiments.runs.seed_units`) and every notebook that trains on those batches share
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
        One entry per step, for :func:`~topogen.experiments.training.train_paired`'s ``input_edges``.
    """
    import hashlib

    from ..reproduce import caching
    from ..reproduce.paths import cache_dir
    from .training import batch_schedule

    h = hashlib.sha256()
    h.update(data.describe().encode())
    h.update(data.checksum.encode())
    h.update(repr((seed, config.batch_size, config.steps, max_dim, torch.device(config.device).type,
                   caching.library_versions(), torch.get_num_threads())).encode())
    h.update(caching.code_fingerprint("experiments.inputs", "experiments.training", "persistence").encode())
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
    found = [edges(pers) for _, pers in prefetch_persistence(stream, max_dim)]
    if cache:
        caching.save(found, path)
    return found


def input_degree(specs: dict) -> int | None:
    """Highest homology degree the terms of ``specs`` (``{name: (kind, weights)}``) need of the input batches.

    None when no model has a topological term (no input persistence is needed).
    """
    return max((TopologicalLoss(w).max_dim for kind, w in specs.values() if kind != "vae"), default=None)
