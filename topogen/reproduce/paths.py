"""Repository paths, found from a marker file, never from the working directory.

Papermill and Jupyter start kernels in different folders; every path a notebook
uses comes from here. The runner redirects figures through ``$TOPOGEN_FIGURES_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repo_root", "figures_dir", "data_dir", "cache_dir", "FIGURES_ENV"]

#: Environment variable that redirects figures (the runner uses it to stage them).
FIGURES_ENV = "TOPOGEN_FIGURES_DIR"


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
