"""Checks shared by the distances and the regularizers: each raises ``ValueError`` naming the value."""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["positive", "at_least", "count", "finite", "check_diagram", "constant"]


def positive(name: str, value) -> float:
    """``value`` as a finite float > 0."""
    value = finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def at_least(name: str, value, minimum: float) -> float:
    """``value`` as a finite float >= ``minimum``."""
    value = finite(name, value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value}")
    return value


def count(name: str, value) -> int:
    """``value`` as a positive integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def finite(name: str, value) -> float:
    """``value`` as a finite float (not a bool or a string), or ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_diagram(name: str, dgm: torch.Tensor) -> None:
    """Check that ``dgm`` is a finite ``(k, 2)`` tensor of (birth, death) pairs."""
    if not isinstance(dgm, torch.Tensor) or dgm.dim() != 2 or dgm.shape[1] != 2:
        shape = tuple(dgm.shape) if isinstance(dgm, torch.Tensor) else type(dgm).__name__
        raise ValueError(f"{name} must be a (k, 2) tensor of (birth, death) pairs, got {shape}")
    if not bool(torch.isfinite(dgm).all()):
        raise ValueError(f"{name} must hold finite (birth, death) pairs only")


def constant(value: torch.Tensor) -> torch.Tensor:
    """The value as a leaf that does not require grad."""
    return value.detach()
