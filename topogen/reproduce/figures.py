"""Figure files: one ``savefig`` for PNGs, GIFs from frames, atomic writes, no volatile metadata.

Every figure a notebook writes goes through :func:`savefig` (PNG) or
:func:`save_rendered` (GIF or PNG bytes): into the figures folder (a
notebook's ``figures_dir`` parameter, else ``$TOPOGEN_FIGURES_DIR``, else the
repository's ``figures/``), atomically (a failed run never leaves half a
file), with no metadata that changes between runs, so two runs write
identical bytes.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from .paths import figures_dir as _figures_dir

__all__ = ["savefig", "save_rendered", "png_image", "gif_bytes", "DPI"]

#: Fixed resolution of every PNG.
DPI = 100


def _target(name: str, suffix: str, figures_dir) -> Path:
    if not name or Path(name).name != name:
        raise ValueError(f"figure name must be a plain file name, got {name!r}")
    name = name if name.endswith(suffix) else name + suffix
    return _figures_dir(figures_dir) / name


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def savefig(fig, name: str, *, figures_dir=None, dpi: int = DPI) -> Path:
    """Write ``fig`` as ``<figures>/<name>.png`` with stripped metadata; returns the path.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    name : str
        File name, conventionally prefixed by the notebook's number
        (``"01_deformation_three_clusters"``); ``.png`` is added if missing.
    figures_dir : str or Path, optional
        Overrides the folder (a notebook's ``figures_dir`` parameter);
        default ``$TOPOGEN_FIGURES_DIR`` or the repository's ``figures/``.
    dpi : int
        Fixed resolution (100).
    """
    path = _target(name, ".png", figures_dir)
    _atomic_write(path, _png_bytes(fig, dpi))
    return path


def _png_bytes(fig, dpi: int) -> bytes:
    """The figure as PNG without the metadata that changes between runs."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def png_image(fig, dpi: int = DPI):
    """The figure rendered as a PIL RGB image (through the same PNG bytes as :func:`savefig`)."""
    from PIL import Image

    return Image.open(io.BytesIO(_png_bytes(fig, dpi))).convert("RGB")


def save_rendered(data: bytes, name: str, *, figures_dir=None) -> Path:
    """Write an already rendered figure (``.png`` or ``.gif`` bytes, e.g. from :func:`animation_gif`).

    ``name`` must end in the format's suffix; the figures folder is chosen as
    for :func:`savefig`. Returns the path.
    """
    suffix = Path(name).suffix
    if suffix not in (".png", ".gif") or not isinstance(data, bytes):
        raise ValueError(f"save_rendered writes .png or .gif bytes, got {name!r} and {type(data).__name__}")
    path = _target(name, suffix, figures_dir)
    _atomic_write(path, data)
    return path


def gif_bytes(frames, duration_ms: int, final_hold: int, colors: int) -> bytes:
    """PIL ``frames`` as looping GIF bytes: one palette from the last frame, the last frame held longer."""
    from PIL import Image

    frames = list(frames)
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    # One shared palette keeps colors stable and the bytes deterministic.
    palette = frames[-1].quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    quantized = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    durations = [duration_ms] * (len(frames) - 1) + [duration_ms * final_hold]
    buf = io.BytesIO()
    quantized[0].save(
        buf, format="GIF", save_all=True, append_images=quantized[1:], duration=durations, loop=0, optimize=False
    )
    return buf.getvalue()
