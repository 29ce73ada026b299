"""Result caches that never go stale and never crash on a broken file.

A cache key must change whenever anything the cached value depends on
changes, the code and the libraries included: :func:`code_fingerprint` hashes the code of a
``topogen`` module and of every ``topogen`` module it imports, transitively,
so editing ``losses.py`` invalidates cached training runs while editing a
notebook's markdown (or an unrelated module such as ``experiments/plots.py``) does not.
The code is the module's syntax tree without its docstrings: a docstring,
a comment or a line break changes no result, so it changes no key.
:func:`library_versions` names the releases of the libraries that compute.

:func:`load` reads a cached file with ``torch.load(..., weights_only=True)``
and treats a truncated or unreadable file as missing (with a warning): the
caller recomputes, it never trusts or crashes on it. :func:`save` writes
atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import warnings
from functools import cache
from pathlib import Path

import torch

__all__ = ["code_fingerprint", "library_versions", "module_dependencies", "load", "save", "fixed_threads"]

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the topogen package

#: The machinery (this package: sweeps, caches, paths, the runner) schedules, stores and locates computations
#: without changing their results, so its source is not part of any key.
INFRASTRUCTURE = "reproduce"


def _source(name: str) -> Path | None:
    """The file of topogen module ``name`` (dotted, relative to topogen: ``experiments.training``), or None."""
    base = PACKAGE_DIR.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(name: str) -> frozenset[str]:
    """The topogen modules (dotted names relative to topogen) that module ``name`` imports."""
    path = _source(name)
    return _read(name, path, os.stat(path).st_mtime_ns)[0]


@cache
def _read(name: str, path: Path, stamp: int) -> tuple[frozenset[str], bytes]:
    """The source as of ``stamp`` (its modification time), parsed once per edit: the topogen modules it imports, and
    its code, the syntax tree without docstrings (comments and layout are not in the tree).

    The tree's text form follows Python's version (3.13 prints it more tersely), so a cache
    written under one minor version of Python is recomputed under another.
    """
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .losses import x, from ..reproduce import sweep, from . import data
                up = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                parts = [*up, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "topogen":
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                found.add(".".join(parts))
            found.update(".".join([*parts, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(".".join(alias.name.split(".")[1:]) for alias in node.names
                         if alias.name.split(".")[0] == "topogen")
        elif (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
              and ast.get_docstring(node, clean=False) is not None):
            node.body = node.body[1:]
    return frozenset(m for m in found if m and _source(m) is not None), ast.dump(tree).encode()


def module_dependencies(module: str) -> list[str]:
    """``module`` and every topogen module it imports, transitively (sorted dotted names).

    Modules of the machinery (:data:`INFRASTRUCTURE`: caching, paths, the sweep
    engine, the runner) are left out: editing how results are scheduled or
    stored does not change them.
    """
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if _source(name) is None:
            raise ValueError(f"topogen has no module {name!r}")
        seen.add(name)
        todo.extend(m for m in _imports(name) - seen if m.split(".")[0] != INFRASTRUCTURE)
    return sorted(seen)


@cache
def _fingerprint(modules: tuple, stamps: tuple) -> str:
    h = hashlib.sha256()
    for name, stamp in zip(modules, stamps, strict=True):
        h.update(name.encode())
        h.update(_read(name, _source(name), stamp)[1])
    return h.hexdigest()[:16]


def code_fingerprint(*modules: str) -> str:
    """A short hash of the code of ``modules`` (``"losses"``, ``"experiments.training"``) and their imports.

    Docstrings, comments and layout are left out (:func:`_read`): editing them keeps every cache.
    """
    names = sorted({dep for m in modules for dep in module_dependencies(m)})
    stamps = tuple(os.stat(_source(n)).st_mtime_ns for n in names)  # re-read on edit
    return _fingerprint(tuple(names), stamps)


#: The libraries whose releases can change a cached result's bits: their kernels, algorithms and tie-breaking.
LIBRARIES = ("torch", "numpy", "scipy", "giotto-ph", "POT", "scikit-learn")


@cache
def library_versions() -> str:
    """The installed versions of :data:`LIBRARIES` (``"torch 2.14.1, numpy ..."``), part of every cache key."""
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in LIBRARIES)


def load(path: Path):
    """The object cached at ``path`` or None when missing, truncated or unreadable (warned, removed)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001  (any unreadable file is recomputed, never trusted)
        warnings.warn(f"cache file {path.name} is unreadable ({type(err).__name__}); recomputing it", stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def save(obj, path: Path) -> None:
    """Write ``obj`` with ``torch.save`` atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


@contextlib.contextmanager
def fixed_threads(n: int = 1):
    """Run a block with ``n`` torch intra-op threads, then restore the previous count.

    Floating-point reductions split over threads sum in a different order, so
    a model trained with 2 threads differs from one trained with 1. Anything
    that is cached (and so computed by whichever process gets there first)
    is computed under a fixed count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
