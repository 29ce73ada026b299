"""Sweeps that scale: parallel with joblib, cached per configuration, optionally on Dask.

``run_sweep(fn, configs)`` evaluates ``fn(**config)`` for every configuration,
in parallel processes (``n_jobs``), with each result cached on disk under
``.cache/joblib`` keyed by the function and its arguments (defaults filled
in, so spelling a default out or leaving it out is the same run), so a rerun
only computes what changed. With ``backend="dask"`` the same calls go to a
``dask.distributed`` cluster through joblib's Dask backend (the optional
``distributed`` extra; a ``Client`` must be active).

``fn`` must be deterministic given its arguments (the trial functions of
:mod:`topogen.experiments.ablation` are); one defined in a script or a notebook
works too (loky and Dask pickle it by value). Cached results are keyed by the
arguments, the libraries' versions and the code, so editing it recomputes them: for a function of
``topogen``, the source of its module and of every ``topogen`` module it imports
(:func:`~topogen.reproduce.caching.code_fingerprint`); for any other, the source
file of its module, or its own source when it has no file (a notebook's cell).
What another module imports from elsewhere is not part of the key.

:func:`cluster` connects a block to an existing Dask scheduler by address,
which is how the notebooks' ``dask_scheduler`` parameter works::

    with cluster("tcp://HOST:8786") as backend:      # "" runs locally
        run_sweep(fn, configs, backend=backend)
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

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
        Function taking keyword arguments; with ``cache``, one defined at module level (results are keyed by
        its name).
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
        Unknown backend, non-positive ``n_jobs``, a configuration that is not a mapping or that
        ``fn`` cannot take (unknown or missing arguments), or, with ``cache``, a lambda, closure or
        partial, or a ``fn`` whose source cannot be read.
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
        cached = _memory().cache(_call, ignore=["fn"])
        name = getattr(fn, "__qualname__", "<unnamed>")
        if "<" in name:  # a lambda, a closure, a partial: neither its name nor its source tells two apart
            raise ValueError(f"cannot cache the results of {name}: define the function at module level or pass "
                             "cache=False")
        from .caching import library_versions

        key = f"{fn.__module__}:{name}", f"{_code_stamp(fn)}, {library_versions()}"
        jobs = [delayed(cached)(fn, *key, config) for config in configs]
    else:
        jobs = [delayed(_alone)(fn, **config) for config in configs]
    return _run(jobs, n_jobs, backend, _shared(configs) if not cache else [], getattr(fn, "__name__", ""), progress)


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


def _call(fn: Callable, target: str, stamp: str, kwargs: dict):
    """``fn(**kwargs)`` (see :func:`_alone`); the cache is keyed by ``target`` (its name), ``stamp`` (its code and
    the libraries' versions) and ``kwargs``."""
    return _alone(fn, **kwargs)


def _code_stamp(fn: Callable) -> str:
    """A hash of the code ``fn``'s results depend on, for the cache key.

    A function of ``topogen`` is keyed by its module and every ``topogen`` module that imports
    (:func:`~topogen.reproduce.caching.code_fingerprint`); any other by the source file of its module, or, when it
    was defined in a notebook or at the prompt, by its own source.
    """
    package, _, module = (fn.__module__ or "").partition(".")
    if package == "topogen" and module:
        from .caching import code_fingerprint

        return code_fingerprint(module)
    try:
        source = Path(inspect.getsourcefile(sys.modules[fn.__module__])).read_text()
    except (KeyError, TypeError, OSError):  # no file: __main__ of a kernel or of the prompt
        try:
            source = inspect.getsource(fn)
        except (TypeError, OSError):
            raise ValueError(f"cannot key the cache on the code of {fn.__qualname__} (its source is not "
                             "available): pass cache=False") from None
    return hashlib.sha256(source.encode()).hexdigest()[:16]


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
