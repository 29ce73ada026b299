"""The run store: paired runs cached per model, and a seed's models split into independent units.

:func:`train_paired_cached` keeps each trained model (logs, evaluations,
final weights) on disk under a key that covers everything the run depends
on, the code included (:func:`cache_key`); :func:`train_seeds` trains many
seeds as units of :func:`topogen.reproduce.sweep.run_sweep` (local processes
or a Dask cluster), each unit computing the same bits wherever it runs.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import torch

from .inputs import input_degree, input_persistence
from .training import PAPER_WEIGHTS, RunLog, TrainConfig, first_step_gradients, model_specs, train_paired

__all__ = ["cache_key", "train_paired_cached", "seed_units", "train_seeds"]


# weights and logs as tensors, loaded with weights_only=True
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
    out = {k: _to_tensors(getattr(log, k)) for k in ("bce", "kld", "topo", "batches", "topo_grad")}
    out.update(model=log.model, seed=log.seed, evaluations=_to_tensors(log.evaluations), state_dict=log.state_dict)
    return out


def _log_from_dict(d: dict) -> RunLog:
    log = RunLog(d["model"], d["seed"], *(_to_numpy(d[k]) for k in ("bce", "kld", "topo", "batches")),
                 topo_grad=_to_numpy(d["topo_grad"]))
    log.evaluations = {int(k): _to_numpy(v) for k, v in d["evaluations"].items()}
    log.state_dict = d["state_dict"]
    return log


def cache_key(data, seed: int, config: TrainConfig, models, extra: str = "", variants: dict | None = None) -> str:
    """A name for the results of one paired run.

    It covers the data (description and a checksum of every image and label), the seed,
    the settings, the models and variants, the evaluator (``extra``), the
    libraries' versions and the source of every ``topogen`` module training depends on
    (:func:`~topogen.reproduce.caching.code_fingerprint`): change any of them and the run
    is recomputed. Settings a run does not read are left out: plain VAEs are
    keyed without the topological weights, so every notebook that trains the
    same VAE finds it.
    """
    import hashlib

    from ..reproduce.caching import code_fingerprint, library_versions

    h = hashlib.sha256()
    h.update(data.describe().encode())
    h.update(data.checksum.encode())
    if all(m == "vae" for m in models) and all(v[0] == "vae" for v in (variants or {}).values()):
        config = replace(config, weights=PAPER_WEIGHTS, signature_weight=1.0)  # plain VAEs use neither
    variants = sorted((k, (v[0], None if v[1] is None else repr(v[1]))) for k, v in (variants or {}).items())
    # the thread count changes floating-point summation order, hence the trained weights
    h.update(repr((seed, config, tuple(models), variants, extra, library_versions(), torch.get_num_threads())).encode())
    # the source of training and of the evaluator
    h.update(code_fingerprint("experiments.training", "experiments.metrics", "experiments.data").encode())
    return f"train-{data.dataset}-{data.source}-s{seed}-{h.hexdigest()[:16]}"


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
    from ..reproduce import caching
    from ..reproduce.paths import cache_dir

    specs = model_specs(config, models, variants)
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
        max_dim = input_degree(todo)
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
    from ..reproduce.caching import fixed_threads

    with fixed_threads(threads):  # results must not depend on where (which process) a unit runs
        logs, hit = train_paired_cached(data, seed, config, models, evaluator=evaluator, evaluator_key=evaluator_key,
                                        cache=cache, progress=False, variants=variants)
    for log in logs.values():
        log.state_dict = None  # weights stay in the cache; do not ship them between processes
    return logs, hit


def seed_units(config: TrainConfig, models, variants: dict | None = None,
               first_gradient: dict | None = None) -> list[tuple[tuple, dict | None]]:
    """How one seed's paired run splits into independent units: ``[(models, variants), ...]``.

    Under ``noise="paired"`` every model of a seed depends only on the seed
    (initial weights, batches, its own identically seeded noise) and on the
    input batches' persistence, which is deterministic, so any split gives
    results bit-identical to the lockstep run of :func:`train_paired`, and
    each model is cached on its own (found by any later split). Without
    ``first_gradient`` each model is its own unit. With it
    (:func:`~topogen.experiments.training.first_step_gradients`), the models without a gradient of their
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
    """Paired runs of several seeds, as independent units of :func:`topogen.reproduce.sweep.run_sweep`.

    The units are :func:`seed_units`: under paired noise, per seed, the
    models without a gradient of their own at the first step
    (:func:`~topogen.experiments.training.first_step_gradients`) share one
    unit and the VAE's trajectory, and every other model is a unit of its
    own; each model is cached on its own. Every unit trains with ``threads``
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
    from ..reproduce.caching import fixed_threads
    from ..reproduce.paths import cache_dir
    from ..reproduce.sweep import run_sweep

    key = getattr(evaluator, "key", "")
    models, variants = tuple(models), variants or {}
    model_specs(config, models, variants)  # checked here: split into units, a clash of names would go unseen
    seeds = [int(s) for s in seeds]
    units, owners = [], []
    for s in seeds:
        probe = None  # which models can share a trajectory; not needed when all of them are cached
        if config.noise == "paired":
            with fixed_threads(threads):  # the keys the units will use
                keys = _unit_keys(data, s, config, models, variants, key)
            if not (cache and all((cache_dir() / f"{k}.pt").is_file() for k in keys)):
                probe = first_step_gradients(data, s, config, models, variants, threads=threads)
        for unit_models, unit_variants in seed_units(config, models, variants or None, probe):
            units.append(dict(data=data, seed=s, config=config, models=unit_models, variants=unit_variants,
                              evaluator=evaluator, evaluator_key=key, cache=cache, threads=threads))
            owners.append(s)
    out = run_sweep(_train_unit, units, n_jobs=n_jobs, backend=backend, cache=False, scheduler=scheduler)
    runs, hits = {s: {} for s in seeds}, dict.fromkeys(seeds, True)
    for s, (logs, hit) in zip(owners, out, strict=True):
        runs[s].update(logs)
        hits[s] = hits[s] and hit
    order = [*models, *variants]
    return [{name: runs[s][name] for name in order} for s in seeds], [hits[s] for s in seeds]
