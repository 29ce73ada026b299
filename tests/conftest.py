"""Shared fixtures and the gudhi oracle for the test suite."""

import gudhi
import numpy as np
import pytest
from scipy.spatial.distance import cdist


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
