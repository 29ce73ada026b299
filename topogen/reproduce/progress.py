"""Live progress: a ``tqdm.auto`` bar in Jupyter Lab and terminals, silent in the batch runner."""

from __future__ import annotations

import os
import sys

__all__ = ["progress_bar", "BATCH_ENV"]

#: Set by the runner: a batch run, whose executed notebooks keep no progress output.
BATCH_ENV = "TOPOGEN_BATCH"


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
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = not os.environ.get(BATCH_ENV) and ("ipykernel" in sys.modules or sys.stderr.isatty())
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)
