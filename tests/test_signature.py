"""The topological signature loss, against a numpy computation from its definition with gudhi's pairings."""

import gudhi
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

import topogen as L
from topogen.persistence import vr_persistence
from topogen.signature import loss_signature


def gudhi_pairings(points: np.ndarray, dim: int):
    """Critical edges of each finite pair of one degree, by gudhi (flag filtration, no collapse)."""
    d = cdist(points, points)
    st = gudhi.SimplexTree.create_from_array(d)
    st.expansion(dim + 1)
    st.compute_persistence(homology_coeff_field=2, min_persistence=0)
    regular0, higher, _, _ = st.flag_persistence_generators()
    if dim == 0:
        edges = np.asarray(regular0, dtype=int).reshape(-1, 3)[:, 1:]
        return None, edges[d[edges[:, 0], edges[:, 1]] > 0]
    g = np.asarray(higher[dim - 1], dtype=int).reshape(-1, 4) if len(higher) >= dim else np.empty((0, 4), int)
    g = g[d[g[:, 2], g[:, 3]] > d[g[:, 0], g[:, 1]]]  # zero-persistence pairs are not part of a diagram
    return g[:, :2], g[:, 2:]


def numpy_signature(x, y, dims=(0,), normalize=True):
    """½‖A*[π*] − A[π*]‖² + ½‖A[π] − A*[π]‖², written out from the definition."""
    a, b = cdist(x, x), cdist(y, y)
    if normalize:
        a, b = a / a.max(), b / b.max()

    def select(m, pairing):
        births, deaths = pairing
        value = m[deaths[:, 0], deaths[:, 1]]
        return value if births is None else np.abs(value - m[births[:, 0], births[:, 1]])

    total = 0.0
    for dim in dims:
        pi, pi_star = gudhi_pairings(x, dim), gudhi_pairings(y, dim)
        total += 0.5 * np.sum((select(b, pi_star) - select(a, pi_star)) ** 2)
        total += 0.5 * np.sum((select(a, pi) - select(b, pi)) ** 2)
    return total


@pytest.fixture
def pair(rng):
    """A 784-D "input batch" and a 10-D "latent batch" whose rows correspond."""
    x = rng.random((40, 784))
    z = x @ rng.normal(size=(784, 10)) / 20 + 0.3 * rng.normal(size=(40, 10))
    return z, x


@pytest.mark.parametrize("dims", [(0,), (1,), (0, 1)])
@pytest.mark.parametrize("normalize", [True, False])
def test_value_matches_numpy_definition(pair, dims, normalize):
    z, x = pair
    got = loss_signature(torch.tensor(z), torch.tensor(x), dims=dims, normalize=normalize)
    assert float(got) == pytest.approx(numpy_signature(z, x, dims, normalize), rel=1e-10)


def test_degree2_matches_numpy_definition(rng):
    z, x = rng.normal(size=(24, 3)), rng.normal(size=(24, 3))
    got = loss_signature(torch.tensor(z), torch.tensor(x), dims=(2,))
    assert float(got) == pytest.approx(numpy_signature(z, x, (2,)), rel=1e-10)


def test_gradients_flow_to_both_clouds(rng):
    z = torch.tensor(rng.normal(size=(12, 3)), requires_grad=True)
    x = torch.tensor(rng.normal(size=(12, 5)), requires_grad=True)
    pz, px = vr_persistence(z, max_dim=1), vr_persistence(x, max_dim=1)

    def f(a, b):
        return loss_signature(a, b, persistence=pz.with_points(a), true_persistence=px.with_points(b), dims=(0, 1))

    assert torch.autograd.gradcheck(f, (z, x), eps=1e-7, atol=1e-6)
    value = loss_signature(z, x.detach())  # a constant target: gradient to the latent cloud only
    value.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_identical_and_rescaled_clouds_give_zero(pair):
    z, _ = pair
    zt = torch.tensor(z, requires_grad=True)
    assert float(loss_signature(zt, torch.tensor(z), dims=(0, 1)).detach()) == 0.0
    assert float(loss_signature(zt, torch.tensor(3.7 * z), dims=(0, 1)).detach()) == pytest.approx(0.0, abs=1e-20)
    assert float(loss_signature(zt, torch.tensor(3.7 * z), normalize=False).detach()) > 0


def test_duplicates_give_finite_gradients(rng):
    z = torch.tensor(np.repeat(rng.normal(size=(6, 2)), 2, axis=0), requires_grad=True)
    x = torch.tensor(rng.normal(size=(12, 4)))
    value = loss_signature(z, x, dims=(0, 1))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(z.grad).all()
    same = torch.zeros((5, 2), requires_grad=True)  # every distance 0: no NaN from the normalization
    assert float(loss_signature(same, torch.tensor(rng.normal(size=(5, 2)))).detach()) >= 0


def test_reuses_precomputed_persistence(pair, monkeypatch):
    z, x = pair
    pz, px = vr_persistence(torch.tensor(z), max_dim=1), vr_persistence(torch.tensor(x), max_dim=1)
    import topogen.signature as S

    monkeypatch.setattr(S, "vr_persistence", lambda *a, **k: pytest.fail("persistence recomputed"))
    got = loss_signature(torch.tensor(z), torch.tensor(x), persistence=pz, true_persistence=px, dims=(0, 1))
    assert float(got) == pytest.approx(numpy_signature(z, x, (0, 1)), rel=1e-10)


def test_in_topological_loss_by_name(pair):
    z, x = pair
    zt, xt = torch.tensor(z, requires_grad=True), torch.tensor(x)
    loss = L.TopologicalLoss({"signature0": 2.0, "signature1": 0.5, "bottleneck0": 1.0})
    value = loss(zt, xt)
    expected = (2 * loss_signature(zt, xt) + 0.5 * loss_signature(zt, xt, dims=(1,)) + L.loss_bottleneck0(zt, xt))
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=1e-12)
    assert loss.max_dim == 1 and set(loss.last_terms) == {"signature0", "signature1", "bottleneck0"}
    value.backward()
    assert torch.isfinite(zt.grad).all()


def test_bad_input(pair):
    z, x = pair
    with pytest.raises(ValueError, match="rows correspond"):
        loss_signature(torch.tensor(z[:10]), torch.tensor(x))
    with pytest.raises(ValueError, match="rows correspond"):
        L.TopologicalLoss({"signature0": 1.0})(torch.tensor(z[:10]), torch.tensor(x))
    for dims in [(3,), (-1,), (), (0, 0), ("0",), (True,)]:
        with pytest.raises(ValueError, match="dims"):
            loss_signature(torch.tensor(z), torch.tensor(x), dims=dims)
    with pytest.raises(ValueError, match="^points contains NaN or inf"):
        loss_signature(torch.full((4, 2), float("nan")), torch.zeros((4, 2)))
    with pytest.raises(ValueError, match="^true_points contains NaN or inf"):
        loss_signature(torch.tensor(z), torch.tensor(x).index_fill(0, torch.tensor([3]), float("inf")))
    with pytest.raises(ValueError, match="computed up to degree 1"):
        loss_signature(torch.tensor(z), torch.tensor(x), dims=(1,),
                       persistence=vr_persistence(torch.tensor(z), max_dim=0))
