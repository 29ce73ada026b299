"""Results files: the numbers a notebook reports, as it prints them, in ``results/<notebook>.json``.

A notebook formats every number it reports through :meth:`Results.num` (or
records a list or count with :meth:`Results.put`) and saves the file at its
end. The README quotes numbers from these files only, and a test checks that
each number it quotes equals a results entry at its printed precision.
Wall times vary from run to run and are never results.

Where the file goes follows the figures: the repository's ``results/``; under
the runner (``$TOPOGEN_FIGURES_DIR``) or with a notebook's ``figures_dir``
parameter, the redirected folder, from which the runner moves it to
``results/`` when the whole run succeeds.
"""

from __future__ import annotations

import json
import math
import numbers
import os

from .figures import _atomic_write
from .paths import FIGURES_ENV, repo_root
from .paths import figures_dir as _figures_dir

__all__ = ["Results", "results_path", "load_results"]


def results_path(name: str, figures_dir=None):
    """Where :class:`Results` ``name`` is written (see the module docstring)."""
    from pathlib import Path

    if not name or Path(name).name != name or name.endswith(".json"):
        raise ValueError(f"results name must be a plain name without suffix, got {name!r}")
    if figures_dir or os.environ.get(FIGURES_ENV):
        folder = _figures_dir(figures_dir)
    else:
        folder = repo_root() / "results"
        folder.mkdir(exist_ok=True)
    return folder / f"{name}.json"


def _plain(value):
    """``value`` as JSON: numbers (NumPy's too), strings, None and lists or tuples of them."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a NumPy or torch scalar
        value = value.item()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"a result must be finite, got {value}")
        return value
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and hasattr(value, "ndim")):
        return [_plain(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    raise ValueError(f"a result must be a number, a string, None or a list of them, got {type(value).__name__}")


class Results:
    """The numbers one notebook reports, keyed by stable dotted names.

    Parameters
    ----------
    name : str
        The notebook's stem, e.g. ``"03_mnist_vae_topovae"``: the file is ``<name>.json``.
    figures_dir : str or Path, optional
        The notebook's ``figures_dir`` parameter (see :func:`results_path`).

    Examples
    --------
    >>> res = Results("00_example", figures_dir=tmp_path)  # doctest: +SKIP
    >>> f"BCE {res.num('bce.diff', 0.95123, '+.2f')} ± {res.num('bce.ci', 5.1449, '.2f')}"  # doctest: +SKIP
    'BCE +0.95 ± 5.14'
    """

    def __init__(self, name: str, *, figures_dir=None):
        self.path = results_path(name, figures_dir)
        self.values: dict[str, object] = {}

    def put(self, key: str, value):
        """Record ``value`` (a number, string, None, or a list of them) under ``key``; returns it."""
        if not isinstance(key, str) or not key or key.strip() != key:
            raise ValueError(f"a results key must be a non-empty string without surrounding blanks, got {key!r}")
        self.values[key] = _plain(value)
        return value

    def num(self, key: str, value, spec: str = ".3f") -> str:
        """``format(value, spec)``, recorded under ``key`` as the number it prints; returns the text.

        ``spec`` is a format specification for a fixed-point, general or
        percent number (``".3f"``, ``"+.2f"``, ``".3g"``, ``".0%"``); the
        recorded value is the printed one (a percentage as printed, 27 for
        ``"27%"``), so the README can be checked against it.
        """
        text = format(_plain(value), spec)
        printed = text.strip().rstrip("%")
        number = float(printed)
        self.put(key, number if any(c in printed for c in ".eE") else int(number))
        return text

    def save(self) -> None:
        """Write the file to :attr:`path` (sorted keys, atomically)."""
        text = json.dumps(self.values, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        _atomic_write(self.path, text.encode())


def load_results(folder=None) -> dict[str, dict]:
    """Every results file of ``folder`` (default the repository's ``results/``), by notebook name."""
    from pathlib import Path

    folder = Path(folder) if folder else repo_root() / "results"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
