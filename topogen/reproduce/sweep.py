"""Sweeps that scale: parallel with joblib, cached per configuration, optionally on Dask.

``run_sweep(fn, configs)`` evaluates ``fn(**config)`` for every configuration,
in parallel processes (``n_jobs``), with each result cached on disk under
``.cache/joblib`` keyed by the function and its arguments (defaults filled
in, so spelling a default out or leaving it out is the same run), so a rerun
only computes what changed. With ``backend="dask"`` the same calls go to a
``dask.distributed`` cluster through joblib's Dask backend (the optional
``distributed`` extra; a ``Client`` must be active).

``fn`` must be importable (a module-level function) and deterministic given
its arguments; the trial functions of :mod:`topogen.experiments.ablation` are. Cached
results are keyed by the arguments *and* by the source of ``fn``'s module and
of every ``topogen`` module it imports (:func:`~topogen.reproduce.caching.code_fingerprint`),
so editing the code recomputes them.

:func:`cluster` connects a block to an existing Dask scheduler by address,
which is how the notebooks' ``dask_scheduler`` parameter works::

    with cluster("tcp://HOST:8786") as backend:      # "" runs locally
        run_sweep(fn, configs, backend=backend)
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import warnings
from collections.abc import Callable, Sequence

from .paths import cache_dir
from .progress import progress_bar

__all__ = ["run_sweep", "shutdown", "cluster"]

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
    scheduler: str = "",
    progress: bool | None = None,
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
        Cache each result on disk by configuration (and the code, see above).
    scheduler : str
        Address of a running Dask scheduler (``tcp://HOST:8786``): the calls
        go to that cluster (``backend`` is then ``"dask"``). Empty: ``backend``
        decides, locally.
    progress : bool, optional
        A bar of units done (a widget in Jupyter Lab, text in a terminal),
        for local and Dask runs alike. Default: on in an interactive session,
        off under the batch runner (see :func:`~topogen.reproduce.progress.progress_bar`).

    Returns
    -------
    list
        Results in the order of ``configs``.

    Raises
    ------
    ValueError
        Unknown backend, non-positive ``n_jobs``, or a configuration that is not a mapping or that
        ``fn`` cannot take (unknown or missing arguments).
    """
    from joblib import delayed

    if scheduler:
        with cluster(scheduler):
            return run_sweep(fn, configs, n_jobs=n_jobs, backend="dask", cache=cache, progress=progress)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    configs = [_complete(fn, c, i) for i, c in enumerate(configs)]
    if cache:
        from .caching import code_fingerprint

        target = f"{fn.__module__}:{fn.__qualname__}"
        module = fn.__module__.split(".", 1)
        stamp = code_fingerprint(module[1]) if module[0] == "topogen" and len(module) == 2 else ""
        cached = _memory().cache(_call)
        jobs = [delayed(cached)(target, stamp, config) for config in configs]
    else:
        jobs = [delayed(_alone)(fn, **config) for config in configs]
    return _run(jobs, n_jobs, backend, _shared(configs) if not cache else [], fn.__name__, progress)


def _shared(configs: list) -> list:
    """The arguments every configuration passes as the same object (a data set, an evaluator), other than scalars.

    On a Dask cluster they are sent to the workers once, not inside every task.
    """
    first = configs[0] if configs else {}
    return [v for k, v in first.items() if not isinstance(v, (str, bytes, int, float, bool, type(None)))
            and all(k in c and c[k] is v for c in configs[1:])]


def _run(jobs: list, n_jobs: int, backend: str, shared: list, desc: str = "", progress: bool | None = None) -> list:
    """The results of joblib's delayed ``jobs``, in order, on ``backend`` (``shared``: scattered once on Dask).

    A bar counts the units done as their results come back (in order).
    """
    from joblib import Parallel, parallel_config

    with progress_bar(len(jobs), desc, enabled=progress) as bar:
        if backend == "sequential" or (n_jobs == 1 and backend != "dask"):
            return [_advance(bar, f(*a, **k)) for f, a, k in jobs]
        if backend == "dask":
            import distributed  # noqa: F401  (the optional extra; fails clearly when missing)

            with parallel_config(backend="dask", scatter=shared or None):
                return [_advance(bar, r) for r in Parallel(return_as="generator")(jobs)]
        with warnings.catch_warnings():
            # loky restarts a worker whose memory grew by 300 MB (a torch process loading data does) once it has
            # finished its task, and says so while other tasks wait; no task is lost or repeated. Only that
            # message is silenced, so executed notebooks carry no noise.
            warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given",
                                    category=UserWarning)
            return [_advance(bar, r) for r in Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")(jobs)]


def _advance(bar, result):
    bar.update()
    return result


def _complete(fn: Callable, config, index: int) -> dict:
    """``config`` with ``fn``'s defaults filled in, so that a call that spells out a default and one that
    leaves it out are the same unit (one cache entry); a configuration ``fn`` cannot take is a ``ValueError``."""
    if not isinstance(config, dict):
        raise ValueError("every configuration must be a dict of keyword arguments")
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(**config)
    except TypeError as err:
        raise ValueError(f"configuration {index} does not fit {fn.__qualname__}{signature}: {err}") from None
    bound.apply_defaults()
    full = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            full.update(value)
        else:
            full[name] = value
    return full


def _alone(fn: Callable, /, **kwargs):
    """``fn(**kwargs)`` on one core: joblib calls inside it (scikit-learn's, say) run in its own process.

    joblib's Dask backend runs each task under ``parallel_config(backend="dask")``, so a nested ``Parallel``
    would otherwise send its pieces back to the cluster and take its worker's thread off the pool meanwhile:
    units would run several at once on a single-threaded worker, and small pieces would travel back and forth.
    """
    from joblib import parallel_config

    with parallel_config(backend="sequential"):
        return fn(**kwargs)


def _call(target: str, code: str, kwargs: dict):
    """``fn(**kwargs)`` (see :func:`_alone`) for ``fn`` named ``"module:qualname"``; ``code`` only keys the cache."""
    module, name = target.split(":")
    fn = importlib.import_module(module)
    for part in name.split("."):
        fn = getattr(fn, part)
    return _alone(fn, **kwargs)


@contextlib.contextmanager
def cluster(address: str = ""):
    """Run a block's sweeps on the Dask scheduler at ``address`` (``tcp://HOST:8786``); yields the backend name.

    An empty address yields ``"loky"`` (local processes) and connects to
    nothing. Otherwise a ``dask.distributed.Client`` is connected for the
    block (the optional ``distributed`` extra) and ``"dask"`` is yielded, to
    pass as ``run_sweep(..., backend=...)``.

    Raises
    ------
    ValueError
        An address that is not a string or does not name a protocol
        (``tcp://``, ``tls://``, ``inproc://``, ...).
    """
    from .params import check_address

    if not check_address("dask_scheduler", address):
        yield "loky"
        return
    from distributed import Client

    with Client(address, set_as_default=True):
        yield "dask"


def shutdown() -> None:
    """Stop joblib's reusable worker processes (call at the end of a notebook); nothing to do if none started."""
    from joblib.externals.loky import get_reusable_executor, reusable_executor

    if reusable_executor._executor is not None:  # get_reusable_executor() would start a pool only to stop it
        get_reusable_executor().shutdown(wait=True)
