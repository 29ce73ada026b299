"""Progress for long loops: live in Jupyter, silent in batch runs (papermill, tests).

The runner sets ``TOPOGEN_BATCH=1``; notebooks executed that way keep no
progress noise in their committed outputs.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Progress", "interactive"]

BATCH_ENV = "TOPOGEN_BATCH"


def interactive() -> bool:
    """True inside a live Jupyter kernel that is not a batch run."""
    if os.environ.get(BATCH_ENV):
        return False
    return "ipykernel" in sys.modules


class Progress:
    """A one-line progress display updated in place, at most every ``every`` seconds.

    Parameters
    ----------
    total : int
        Number of steps.
    label : str
        Shown before the counter.
    enabled : bool, optional
        Default: :func:`interactive`.
    """

    def __init__(self, total: int, label: str = "", enabled: bool | None = None, every: float = 0.5):
        self.total, self.label, self.every = int(total), label, every
        self.enabled = interactive() if enabled is None else enabled
        self._handle = None
        self._last = 0.0
        self._start = time.perf_counter()

    def update(self, step: int, **info) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if step < self.total and now - self._last < self.every:
            return
        self._last = now
        extra = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        text = f"{self.label} {step}/{self.total}  {now - self._start:.0f}s  {extra}".strip()
        from IPython.display import display

        if self._handle is None:
            self._handle = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self._handle.update({"text/plain": text}, raw=True)
