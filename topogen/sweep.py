"""Sweeps that scale: parallel with joblib, cached per configuration, optionally on Dask.

``run_sweep(fn, configs)`` evaluates ``fn(**config)`` for every configuration,
in parallel processes (``n_jobs``), with each result cached on disk under
``.cache/joblib`` keyed by the function and its arguments, so a rerun only
computes what changed. With ``backend="dask"`` the same calls go to a
``dask.distributed`` cluster through joblib's Dask backend (the optional
``distributed`` extra; a ``Client`` must be active).

``fn`` must be importable (a module-level function) and deterministic given
its arguments; the trial functions of :mod:`topogen.ablation` are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .paths import cache_dir

__all__ = ["run_sweep", "clear_cache", "shutdown"]

BACKENDS = ("loky", "sequential", "dask")


def _memory():
    from joblib import Memory

    return Memory(cache_dir() / "joblib", verbose=0)


def run_sweep(
    fn: Callable,
    configs: Sequence[dict],
    *,
    n_jobs: int = 1,
    backend: str = "loky",
    cache: bool = True,
) -> list:
    """``[fn(**c) for c in configs]``, in parallel and cached.

    Parameters
    ----------
    fn : callable
        Module-level function taking keyword arguments.
    configs : sequence of dict
        One keyword-argument mapping per run.
    n_jobs : int
        Parallel workers (1: in this process). Ignored by ``"sequential"``.
    backend : {"loky", "sequential", "dask"}
        joblib backend. ``"dask"`` needs the ``distributed`` extra and an
        active ``dask.distributed.Client``.
    cache : bool
        Cache each result on disk by configuration.

    Returns
    -------
    list
        Results in the order of ``configs``.

    Raises
    ------
    ValueError
        Unknown backend, non-positive ``n_jobs`` or a configuration that is not a mapping.
    """
    from joblib import Parallel, delayed, parallel_config

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    configs = list(configs)
    if not all(isinstance(c, dict) for c in configs):
        raise ValueError("every configuration must be a dict of keyword arguments")
    call = _memory().cache(fn) if cache else fn
    if backend == "sequential" or (n_jobs == 1 and backend != "dask"):
        return [call(**c) for c in configs]
    if backend == "dask":
        import distributed  # noqa: F401  (the optional extra; fails clearly when missing)

        with parallel_config(backend="dask"):
            return Parallel()(delayed(call)(**c) for c in configs)
    return Parallel(n_jobs=n_jobs, backend=backend)(delayed(call)(**c) for c in configs)


def clear_cache() -> None:
    """Forget every cached sweep result."""
    _memory().clear(warn=False)


def shutdown() -> None:
    """Stop joblib's reusable worker processes (call at the end of a notebook)."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
