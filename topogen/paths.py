"""Repository paths (found from a marker file, not the working directory) and the runner's environment.

Papermill and Jupyter start kernels in different folders; every path a notebook
uses comes from here. The runner (:mod:`topogen.reproduce`) also tells kernels
through the environment where figures go and that the run is a batch run, in
which live progress bars stay silent (:func:`progress_bar`).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repo_root", "figures_dir", "data_dir", "cache_dir", "FIGURES_ENV", "BATCH_ENV", "SCHEDULER_ENV",
           "PRIORITY_ENV", "progress_bar"]

#: Environment variable that redirects figures (the runner uses it to stage them).
FIGURES_ENV = "TOPOGEN_FIGURES_DIR"
#: Set by the runner: a batch run, whose executed notebooks keep no progress output.
BATCH_ENV = "TOPOGEN_BATCH"
#: Set by the runner for notebooks run side by side: the address of the Dask scheduler their sweeps share (a
#: sweep given no scheduler of its own uses it; see :func:`topogen.sweep.run_sweep`).
SCHEDULER_ENV = "TOPOGEN_DASK_SCHEDULER"
#: Set by the runner beside it: the Dask priority of a notebook's units (minus its number), so that the shared workers
#: serve the earliest notebook with units waiting, and a notebook started later never delays an earlier one.
PRIORITY_ENV = "TOPOGEN_DASK_PRIORITY"


def repo_root() -> Path:
    """The repository root: the first parent of this package holding ``pyproject.toml``."""
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "topogen").is_dir():
            return folder
    raise FileNotFoundError("topogen is not inside its repository (no pyproject.toml above it)")


def figures_dir(override: str | os.PathLike | None = None) -> Path:
    """Where figures go: ``override`` if non-empty, else ``$TOPOGEN_FIGURES_DIR``, else ``figures/``."""
    if override:
        path = Path(override)
    elif os.environ.get(FIGURES_ENV):
        path = Path(os.environ[FIGURES_ENV])
    else:
        path = repo_root() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Folder for downloaded data sets (``data/``, git-ignored), or ``$TOPOGEN_DATA_DIR``."""
    path = Path(os.environ.get("TOPOGEN_DATA_DIR") or repo_root() / "data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Folder for cached results and weights (``.cache/``, git-ignored), or ``$TOPOGEN_CACHE_DIR``."""
    path = Path(os.environ.get("TOPOGEN_CACHE_DIR") or repo_root() / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def progress_bar(total: int, desc: str = "", enabled: bool | None = None):
    """A ``tqdm.auto`` bar: a widget in Jupyter Lab, text in a terminal, silent in batch runs.

    Parameters
    ----------
    total : int
        Number of steps.
    desc : str
        Label shown before the bar.
    enabled : bool, optional
        Default: on, except under the runner (``$TOPOGEN_BATCH``) or outside
        an interactive session.
    """
    import sys

    from tqdm.auto import tqdm

    if enabled is None:
        enabled = not os.environ.get(BATCH_ENV) and ("ipykernel" in sys.modules or sys.stderr.isatty())
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)
