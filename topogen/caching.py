"""Result caches that never go stale and never crash on a broken file.

A cache key must change whenever anything the cached value depends on
changes, the code included: :func:`code_fingerprint` hashes the source of a
``topogen`` module and of every ``topogen`` module it imports, transitively,
so editing ``losses.py`` invalidates cached training runs while editing a
notebook's markdown (or an unrelated module such as ``plotting.py``) does not.

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

__all__ = ["code_fingerprint", "module_dependencies", "load", "save", "fixed_threads"]

PACKAGE_DIR = Path(__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Names of the topogen modules a source file imports (relative or absolute)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .losses import x
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import losses
                found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.split(".")[0] == "topogen":
                parts = node.module.split(".")
                found.update([parts[1]] if len(parts) > 1 else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "topogen" and len(parts) > 1:
                    found.add(parts[1])
    return {name for name in found if (PACKAGE_DIR / f"{name}.py").is_file()}


#: Modules that schedule, store or locate computations without changing their results: not part of a key.
INFRASTRUCTURE = frozenset({"caching", "paths", "sweep"})


def module_dependencies(module: str) -> list[str]:
    """``module`` and every topogen module it imports, transitively (sorted names).

    :data:`INFRASTRUCTURE` modules (caching, paths, the sweep engine) are left
    out: editing how results are scheduled or stored does not change them.
    """
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = PACKAGE_DIR / f"{name}.py"
        if not path.is_file():
            raise ValueError(f"topogen has no module {name!r}")
        seen.add(name)
        todo.extend(_imports(path) - seen - INFRASTRUCTURE)
    return sorted(seen)


@cache
def _fingerprint(modules: tuple, stamps: tuple) -> str:
    h = hashlib.sha256()
    for name in modules:
        h.update(name.encode())
        h.update((PACKAGE_DIR / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def code_fingerprint(*modules: str) -> str:
    """A short hash of the source of ``modules`` and everything they import from topogen."""
    names = sorted({dep for m in modules for dep in module_dependencies(m)})
    stamps = tuple(os.stat(PACKAGE_DIR / f"{n}.py").st_mtime_ns for n in names)  # re-read on edit
    return _fingerprint(tuple(names), stamps)


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
