"""The reproduction machinery: the papermill runner, the sweep engine, caches, parameters, figure and results files.

Nothing here changes a result; it decides where and when the library and the
experiments run and where their outputs go. ``python -m topogen.reproduce``
runs the notebooks (:mod:`topogen.reproduce.runner`).
"""

from .figures import save_rendered, savefig
from .normalize import normalize_notebook
from .results import Results
from .runner import Interrupted, NotebookFailed, find_notebooks, main, run
from .sweep import cluster, run_sweep, shutdown

__all__ = ["run", "main", "find_notebooks", "normalize_notebook", "NotebookFailed", "Interrupted", "run_sweep",
           "cluster", "shutdown", "savefig", "save_rendered", "Results"]
