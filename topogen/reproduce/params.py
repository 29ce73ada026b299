"""Validation of notebook parameters: each check raises ``ValueError`` naming the parameter.

The ``check_*`` functions serve the notebooks' parameters cells; :func:`notebook_parameters`
serves the runner, before any notebook starts.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["check_int", "check_float", "check_choice", "check_subset", "check_weights", "check_device",
           "check_address", "notebook_parameters"]


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not a bool) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"parameter {name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"parameter {name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"parameter {name} must be <= {maximum}, got {value}")
    return value


def check_float(name: str, value, minimum: float | None = None, maximum: float | None = None,
                strict_minimum: bool = False) -> float:
    """A finite real number within the bounds (``strict_minimum``: ``> minimum``)."""
    from ..validation import finite

    if not isinstance(value, (int, float)):  # no strings or arrays in a parameters cell
        raise ValueError(f"parameter {name} must be a real number, got {value!r}")
    value = finite(f"parameter {name}", value)
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise ValueError(f"parameter {name} must be {'>' if strict_minimum else '>='} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"parameter {name} must be <= {maximum}, got {value}")
    return value


def check_choice(name: str, value, choices: Iterable):
    """One of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"parameter {name} must be one of {choices}, got {value!r}")
    return value


def check_subset(name: str, values, choices: Iterable) -> list:
    """A non-empty list of distinct entries of ``choices``."""
    choices = list(choices)
    if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"parameter {name} must be a non-empty list from {choices}, got {values!r}")
    bad = [v for v in values if v not in choices]
    if bad or len(set(values)) != len(values):
        raise ValueError(f"parameter {name} must list distinct entries of {choices}, got {values!r}")
    return list(values)


def check_weights(name: str, value):
    """A weight vector or mapping accepted by :class:`~topogen.losses.TopologicalLoss`."""
    from ..losses import TopologicalLoss

    try:
        TopologicalLoss(value)
    except ValueError as err:
        raise ValueError(f"parameter {name}: {err}") from None
    return value


def check_device(name: str, value) -> str:
    """A torch device string that exists here ("cpu", "cuda", "cuda:0", ...)."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"parameter {name} must be a torch device such as 'cpu' or 'cuda', got {value!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"parameter {name} is {value!r} but CUDA is not available on this machine")
    return str(device)


def check_address(name: str, value) -> str:
    """A Dask scheduler address (``tcp://HOST:8786``) or the empty string (run locally)."""
    if not isinstance(value, str) or (value and "://" not in value):
        raise ValueError(f"parameter {name} must be empty or an address such as 'tcp://HOST:8786', got {value!r}")
    return value


def notebook_parameters(notebooks, params: dict, overrides: dict, source: str) -> dict:
    """Each notebook's parameters: its entry of the parameter set, then the overrides its parameters cell declares.

    papermill injects a parameter the notebook does not declare and runs on,
    so a misspelt name would be ignored in silence: a key of the set that its
    notebook lacks, or an override that no selected notebook has, raises.
    """
    from papermill import inspect_notebook

    declared = {nb.stem: set(inspect_notebook(str(nb))) for nb in notebooks}
    for nb in notebooks:
        unknown = sorted(set(params.get(nb.stem, {})) - declared[nb.stem])
        if unknown:
            raise ValueError(f"{source}: {nb.name} has no parameter {', '.join(map(repr, unknown))} "
                             f"(its parameters: {', '.join(sorted(declared[nb.stem]))})")
    for key in overrides:
        if not any(key in names for names in declared.values()):
            raise ValueError(f"-p {key}: no notebook run has a parameter {key!r}")
    return {nb.stem: {**params.get(nb.stem, {}), **{k: v for k, v in overrides.items() if k in declared[nb.stem]}}
            for nb in notebooks}
