"""Values, gradients and input checks of topogen.losses against independent computations."""

import math

import gudhi
import gudhi.wasserstein
import numpy as np
import pytest
import torch
from conftest import gudhi_diagrams

import topogen as L
from topogen import terms
from topogen.persistence import vr_persistence

# ---------------------------------------------------------------- numpy oracles


def np_entropy(dgm, delta=1e-3):
    ell = [d - b for b, d in dgm if d - b > delta]
    if not ell:
        return 0.0
    total = sum(ell)
    return -sum((x / total) * math.log(x / total) for x in ell)


def np_kernel(f, g, sigma=0.05):
    s = 0.0
    for p in f:
        for q in g:
            qbar = (q[1], q[0])
            s += math.exp(-((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2) / (8 * sigma))
            s -= math.exp(-((p[0] - qbar[0]) ** 2 + (p[1] - qbar[1]) ** 2) / (8 * sigma))
    return s / (8 * math.pi * sigma)


def np_density(dgm, sigma=0.2, scale=0.002, maxrange=35.0, npoints=30):
    xs = np.linspace(0, maxrange, npoints)
    return np.array([scale * sum(d**4 * math.exp(-(((d - x) / sigma) ** 2)) for _, d in dgm) for x in xs])


def clouds(rng, n=40, m=48, dim=2):
    x = rng.normal(size=(n, dim)) * 2
    y = np.concatenate([rng.normal(size=(m // 2, dim)), rng.normal(size=(m - m // 2, dim)) + 6])
    return x, y


def random_diagram(rng, k, zero_birth=False, decimals=None):
    b = np.zeros(k) if zero_birth else rng.random(k) * 2
    d = b + rng.random(k) * 3
    dgm = np.c_[b, d]
    return np.round(dgm, decimals) if decimals is not None else dgm


# ---------------------------------------------------------------- bottleneck


@pytest.mark.parametrize("zero_birth", [False, True], ids=["generic", "degree0-like"])
@pytest.mark.parametrize("decimals", [None, 1], ids=["distinct", "many-ties"])
def test_bottleneck_equals_gudhi_on_random_diagrams(rng, zero_birth, decimals):
    for _ in range(60):
        n, m = rng.integers(0, 40, size=2)
        p = random_diagram(rng, n, zero_birth, decimals)
        q = random_diagram(rng, m, zero_birth, decimals)
        value, _ = L.bottleneck_matching(p, q)
        torch_value = L.bottleneck_distance(torch.tensor(p), torch.tensor(q))
        expected = gudhi.bottleneck_distance(p, q, 0)
        assert value == pytest.approx(expected, abs=1e-9)
        assert float(torch_value) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("p, message", [
    (np.zeros((3, 3)), r"p must be a \(k, 2\) array of \(birth, death\) pairs, got shape \(3, 3\)"),
    (np.array([[0.0, np.nan]]), "p must hold finite"),
    (np.array([[0.0, np.inf]]), "p must hold finite"),
])
def test_bottleneck_matching_rejects_what_is_not_a_finite_diagram(p, message):
    with pytest.raises(ValueError, match=message):
        L.bottleneck_matching(p, np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=message.replace("p ", "q ", 1).replace("p must", "q must")):
        L.bottleneck_matching(np.array([[0.0, 1.0]]), p)
    assert L.bottleneck_matching([], np.zeros((0,))) == (0.0, ("none", -1, -1))  # empty, in any shape


def test_bottleneck_realizing_pair_costs_the_value(rng):
    for _ in range(50):
        p = random_diagram(rng, 20, decimals=1)
        q = random_diagram(rng, 25, decimals=1)
        value, (kind, i, j) = L.bottleneck_matching(p, q)
        if kind == "pq":
            cost = np.abs(p[i] - q[j]).max()
        elif kind == "p":
            cost = (p[i, 1] - p[i, 0]) / 2
        else:
            cost = (q[j, 1] - q[j, 0]) / 2
        assert cost == pytest.approx(value, abs=1e-12)


def test_bottleneck_on_real_diagrams_matches_gudhi(rng):
    x, y = clouds(rng)
    gx, gy = gudhi_diagrams(x), gudhi_diagrams(y)
    for dim, fn in [(0, L.loss_bottleneck0), (1, L.loss_bottleneck1)]:
        value = fn(torch.tensor(x), torch.tensor(y))
        assert float(value) == pytest.approx(gudhi.bottleneck_distance(gx[dim], gy[dim], 0), abs=1e-5)


def test_bottleneck_realized_by_target_point_has_no_grad():
    # p has one tiny bar; q has one long bar that must go to the diagonal
    x = torch.tensor([[0.0, 0.0], [0.1, 0.0]], requires_grad=True)
    p = L.bottleneck_distance(torch.tensor([[0.0, 0.1]], requires_grad=True), torch.tensor([[0.0, 10.0]]))
    assert not p.requires_grad and float(p) == pytest.approx(5.0)
    empty = L.bottleneck_distance(torch.zeros((0, 2), requires_grad=True), torch.tensor([[0.0, 1.0]]))
    assert not empty.requires_grad and float(empty) == pytest.approx(0.5)
    near = L.loss_bottleneck0(x, torch.tensor([[0.0, 0.0], [0.15, 0.0]]))
    assert near.requires_grad and float(near.detach()) == pytest.approx(0.05)


# ---------------------------------------------------------------- wasserstein


@pytest.mark.parametrize("q", [1.0, 2.0])
def test_wasserstein_equals_gudhi(rng, q):
    for _ in range(20):
        p = random_diagram(rng, int(rng.integers(0, 30)))
        r = random_diagram(rng, int(rng.integers(0, 30)))
        value = L.wasserstein_distance(torch.tensor(p), torch.tensor(r), q=q)
        expected = gudhi.wasserstein.wasserstein_distance(p, r, order=q, internal_p=np.inf)
        assert float(value) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("q", [1.0, 2.0])
@pytest.mark.parametrize("ties", [False, True])
def test_wasserstein_matching_is_gudhis(rng, q, ties):
    # The matching is computed without gudhi, on gudhi's construction: the same pairs in the same order, also where
    # many optimal matchings tie (small integer diagrams), so every value and gradient is gudhi's to the bit.
    from topogen.distances import _optimal_matching

    for _ in range(30):
        n, m = int(rng.integers(0, 25)), int(rng.integers(0, 25))
        p, r = random_diagram(rng, n), random_diagram(rng, m)
        if ties:
            p, r = np.floor(4 * p), np.floor(4 * r) + np.array([0.0, 1.0])
        _, expected = gudhi.wasserstein.wasserstein_distance(p, r, matching=True, order=q, internal_p=np.inf)
        np.testing.assert_array_equal(_optimal_matching(p, r, q), np.asarray(expected).reshape(-1, 2))


def test_wasserstein_terms_on_clouds(rng):
    x, y = clouds(rng)
    gx, gy = gudhi_diagrams(x), gudhi_diagrams(y)
    for dim, fn in [(0, L.loss_wasserstein0), (1, L.loss_wasserstein1)]:
        for q in (1.0, 2.0):
            value = fn(torch.tensor(x), torch.tensor(y), q=q)
            expected = gudhi.wasserstein.wasserstein_distance(gx[dim], gy[dim], order=q, internal_p=np.inf)
            assert float(value) == pytest.approx(expected, abs=1e-5)


# ---------------------------------------------------------------- entropy, kernel, density


def test_entropy_kernel_density_equal_numpy_formulas(rng):
    x, y = clouds(rng)
    gx, gy = gudhi_diagrams(x), gudhi_diagrams(y)
    tx, ty = torch.tensor(x), torch.tensor(y)
    for dim, fn in [(0, L.loss_persentropy0), (1, L.loss_persentropy1)]:
        expected = (np_entropy(gx[dim]) - np_entropy(gy[dim])) ** 2
        assert float(fn(tx, ty)) == pytest.approx(expected, abs=1e-8)
        expected = (np_entropy(gx[dim], 0.3) - np_entropy(gy[dim], 0.3)) ** 2
        assert float(fn(tx, ty, delta=0.3)) == pytest.approx(expected, abs=1e-8)
    for dim, fn in [(0, L.loss_dsigma0), (1, L.loss_dsigma1)]:
        for sigma in (0.05, 0.5):
            f, g = gx[dim], gy[dim]
            expected = np_kernel(f, f, sigma) + np_kernel(g, g, sigma) - 2 * np_kernel(f, g, sigma)
            assert float(fn(tx, ty, sigma=sigma)) == pytest.approx(expected, abs=1e-8)
    # the density needs deaths on its grid: scale the clouds up
    tx5, ty5 = tx * 5, ty * 5
    gx5, gy5 = gudhi_diagrams(x * 5), gudhi_diagrams(y * 5)
    expected = np.mean((np_density(gx5[0]) - np_density(gy5[0])) ** 2)
    assert float(L.loss_density(tx5, ty5)) == pytest.approx(expected, rel=1e-8)
    assert expected > 0
    expected = np.mean((np_density(gx5[0], 1.0, 0.01, 20, 7) - np_density(gy5[0], 1.0, 0.01, 20, 7)) ** 2)
    got = L.loss_density(tx5, ty5, sigma=1.0, scale=0.01, maxrange=20, npoints=7)
    assert float(got) == pytest.approx(expected, rel=1e-8)


def test_push0_is_minus_half_the_deaths(rng):
    x, _ = clouds(rng)
    expected = -gudhi_diagrams(x)[0][:, 1].sum() / 2
    assert float(L.loss_push0(torch.tensor(x))) == pytest.approx(expected, rel=1e-10)


def test_entropy_of_empty_set_is_zero():
    assert float(L.persistence_entropy(torch.zeros((0, 2)))) == 0.0
    assert float(L.persistence_entropy(torch.tensor([[0.0, 0.0005]]))) == 0.0


# ---------------------------------------------------------------- gradients


TERMS = {
    "bottleneck0": L.loss_bottleneck0,
    "bottleneck1": L.loss_bottleneck1,
    "persentropy0": L.loss_persentropy0,
    "persentropy1": L.loss_persentropy1,
    "dsigma0": lambda x, y, **k: L.loss_dsigma0(x, y, sigma=0.5, **k),
    "dsigma1": lambda x, y, **k: L.loss_dsigma1(x, y, sigma=0.5, **k),
    "density": lambda x, y, **k: L.loss_density(x, y, sigma=1.0, maxrange=8.0, **k),
    "wasserstein0": L.loss_wasserstein0,
    "wasserstein1": L.loss_wasserstein1,
    "wasserstein1_q2": lambda x, y, **k: L.loss_wasserstein1(x, y, q=2.0, **k),
}
#: Degree-2 terms, checked on 3-D clouds with voids.
TERMS2 = {
    "bottleneck2": L.loss_bottleneck2,
    "wasserstein2": L.loss_wasserstein2,
    "wasserstein2_q2": lambda x, y, **k: L.loss_wasserstein2(x, y, q=2.0, **k),
    "persentropy2": L.loss_persentropy2,
    "dsigma2": lambda x, y, **k: L.loss_dsigma2(x, y, sigma=0.5, **k),
}


@pytest.mark.parametrize("name", list(TERMS))
def test_gradcheck(rng, name):
    x, y = clouds(rng, n=14, m=16)
    xt = torch.tensor(x, requires_grad=True)
    pers = vr_persistence(xt)
    true_pers = vr_persistence(torch.tensor(y))
    fn = TERMS[name]
    value = fn(xt, None, persistence=pers, true_persistence=true_pers)
    assert value.requires_grad

    def f(z):
        return fn(z, None, persistence=pers.with_points(z), true_persistence=true_pers)

    assert torch.autograd.gradcheck(f, (xt,), eps=1e-7, atol=1e-5)


def test_gradcheck_push0(rng):
    x, _ = clouds(rng, n=14)
    xt = torch.tensor(x, requires_grad=True)
    pers = vr_persistence(xt)
    assert torch.autograd.gradcheck(lambda z: L.loss_push0(z, persistence=pers.with_points(z)), (xt,))


# ---------------------------------------------------------------- identity, duplicates


@pytest.mark.parametrize("name", list(TERMS))
def test_identical_inputs_give_zero(rng, name):
    x, _ = clouds(rng)
    xt = torch.tensor(x, requires_grad=True)
    value = TERMS[name](xt, torch.tensor(x))
    assert abs(float(value.detach())) < 1e-12
    if value.requires_grad:
        value.backward()
        assert torch.isfinite(xt.grad).all()


@pytest.mark.parametrize("name", list(TERMS))
def test_duplicate_points_never_nan(rng, name):
    x = np.repeat(rng.normal(size=(6, 2)), 3, axis=0)
    y = rng.normal(size=(12, 2))
    xt = torch.tensor(x, requires_grad=True)
    value = TERMS[name](xt, torch.tensor(y))
    assert torch.isfinite(value)
    if value.requires_grad:
        value.backward()
        assert torch.isfinite(xt.grad).all()


# ---------------------------------------------------------------- half precision


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", L.TERMS)
def test_half_precision_clouds_are_computed_in_float32(rng, name, dtype):
    # In 8 to 11 bits the summaries cancel catastrophically (a scale-space distance off by 10x): a half-precision
    # cloud is computed in float32, bit for bit as the float32 copy of the same rounded points, and its gradient
    # reaches the half-precision tensor.
    x, y = (torch.tensor(rng.normal(size=(30, 3))).to(dtype) for _ in range(2))
    loss = L.TopologicalLoss({name: 1.0})
    half, single = x.clone().requires_grad_(True), x.float().requires_grad_(True)
    value, reference = loss(half, y), loss(single, y.float())
    assert value.dtype == torch.float32 and torch.equal(value.detach(), reference.detach())
    if reference.requires_grad:
        value.backward()
        reference.backward()
        assert half.grad.dtype == dtype and torch.equal(half.grad, single.grad.to(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_distances_accept_half_precision_diagrams(rng, dtype):
    # The matchings run in float64 on the diagrams as given; the value is read off them in their dtype.
    for _ in range(10):
        p, q = (torch.tensor(random_diagram(rng, int(rng.integers(1, 20)))).to(dtype) for _ in range(2))
        p64, q64 = p.double().numpy(), q.double().numpy()
        rel = 4 * torch.finfo(dtype).eps  # a few roundings in the diagrams' dtype
        bottleneck = L.bottleneck_distance(p, q)
        wasserstein = L.wasserstein_distance(p, q, q=2.0)
        assert bottleneck.dtype == dtype and wasserstein.dtype == dtype
        assert float(bottleneck) == pytest.approx(gudhi.bottleneck_distance(p64, q64, 0), rel=rel)
        expected = gudhi.wasserstein.wasserstein_distance(p64, q64, order=2.0, internal_p=np.inf)
        assert float(wasserstein) == pytest.approx(expected, rel=rel)


@pytest.mark.parametrize("name", L.TERMS)
def test_autocast_leaves_the_terms_in_full_precision(rng, name):
    # Under torch.autocast a matrix product on float32 runs in bfloat16; no term may depend on one.
    x, y = (torch.tensor(rng.normal(size=(30, 3)), dtype=torch.float32) for _ in range(2))
    loss = L.TopologicalLoss({name: 1.0})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(x, y)
    assert value.dtype == torch.float32 and torch.equal(value, loss(x, y))


# ---------------------------------------------------------------- TopologicalLoss

@pytest.mark.parametrize("name", list(TERMS) + ["push0", "loss"])
def test_a_cloud_given_with_its_persistence_gets_the_gradient(rng, name):
    # The persistence may come from a detached copy (or another device): the diagrams are read off the cloud given,
    # so the gradient reaches it, the same value and gradient as computing the persistence from it.
    x, y = clouds(rng, n=20, m=24)
    extra = {"push0": lambda p, t, **k: L.loss_push0(p, **k),
             "loss": lambda p, t, **k: L.TopologicalLoss([1, 1, 1, 1, 1, 1, 1])(p, t, **k)}
    fn = extra.get(name, TERMS.get(name))
    direct, given = torch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    want = fn(direct, torch.tensor(y))
    got = fn(given, torch.tensor(y), persistence=vr_persistence(given.detach().clone()))
    assert torch.equal(got.detach(), want.detach()) and got.requires_grad == want.requires_grad
    if want.requires_grad:
        want.backward()
        got.backward()
        assert torch.equal(given.grad, direct.grad)
    with pytest.raises(ValueError, match="points holds 19 points, its persistence was computed for 20"):
        fn(given[:19], torch.tensor(y), persistence=vr_persistence(given.detach()))


def test_a_target_given_with_its_persistence_is_prepared_once(rng, monkeypatch):
    x, y = clouds(rng)
    ty = torch.tensor(y)
    loss, target = L.TopologicalLoss({"dsigma0": 1.0}), vr_persistence(ty)
    prepared = []
    real = terms._dsigma_target
    monkeypatch.setitem(terms._DIAGRAM_TERMS, "dsigma", (lambda *a, **k: prepared.append(1) or real(*a, **k),
                                                     terms._DIAGRAM_TERMS["dsigma"][1]))
    values = [float(loss(torch.tensor(x + step), ty, true_persistence=target)) for step in range(3)]
    assert len(prepared) == 1 and values == [float(loss(torch.tensor(x + step), ty)) for step in range(3)]
    loss(torch.tensor(x), ty * 2, true_persistence=target)  # another cloud along the same edges: prepared anew
    assert len(prepared) == 1 + 3 + 1



def test_topological_loss_is_the_weighted_sum(rng):
    x, y = clouds(rng)
    tx, ty = torch.tensor(x), torch.tensor(y)
    weights = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    loss = L.TopologicalLoss(weights, kernel_sigma=0.5)
    total = loss(tx, ty)
    expected = (
        1 * L.loss_bottleneck0(tx, ty)
        + 2 * L.loss_bottleneck1(tx, ty)
        + 3 * L.loss_persentropy0(tx, ty)
        + 4 * L.loss_persentropy1(tx, ty)
        + 5 * L.loss_dsigma0(tx, ty, sigma=0.5)
        + 6 * L.loss_dsigma1(tx, ty, sigma=0.5)
        + 7 * L.loss_density(tx, ty)
    )
    assert float(total) == pytest.approx(float(expected), rel=1e-10)
    assert set(loss.last_terms) == set(L.PAPER_TERMS)
    assert loss.last_terms["bottleneck1"] == pytest.approx(float(L.loss_bottleneck1(tx, ty)))


def test_topological_loss_by_name_and_degree(rng, monkeypatch):
    x, y = clouds(rng)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y)
    loss0 = L.TopologicalLoss({"bottleneck0": 1.0, "wasserstein0": 0.5})
    assert loss0.max_dim == 0
    loss1 = L.TopologicalLoss([15, 15, 0, 0, 0, 0, 0])
    assert loss1.max_dim == 1 and loss1.weights == {"bottleneck0": 15.0, "bottleneck1": 15.0}
    calls = []
    real = L.vr_persistence

    def counting(points, max_dim=1, **kwargs):
        calls.append(max_dim)
        return real(points, max_dim=max_dim, **kwargs)

    monkeypatch.setattr(terms, "vr_persistence", counting)
    value = loss0(tx, ty)
    assert calls == [0, 0]  # once per cloud, degree 0 only
    value.backward()
    assert torch.isfinite(tx.grad).all()
    expected = L.loss_bottleneck0(tx, ty) + 0.5 * L.loss_wasserstein0(tx, ty)
    assert float(value.detach()) == pytest.approx(float(expected.detach()))
    calls.clear()
    true_pers = real(ty, max_dim=1)
    loss1(tx, None, true_persistence=true_pers)
    assert calls == [1]  # the target's persistence was reused


def test_fixed_target_is_prepared_once_and_never_stale(rng, monkeypatch):
    x, y = clouds(rng)
    ty = torch.tensor(y)
    names = {name: 1.0 for name in L.ALL_TERMS}
    loss = L.TopologicalLoss(names, kernel_sigma=0.5)
    target = vr_persistence(ty, max_dim=1)
    prepared = []
    real = terms._dsigma_target
    monkeypatch.setitem(terms._DIAGRAM_TERMS, "dsigma", (lambda *a, **k: prepared.append(1) or real(*a, **k),
                                                     terms._DIAGRAM_TERMS["dsigma"][1]))

    def fresh(points, true_pers):  # a new loss every call: nothing prepared before
        return L.TopologicalLoss(names, kernel_sigma=0.5).terms(points, persistence=vr_persistence(points),
                                                                 true_persistence=true_pers)

    for step in range(3):  # a deformation: new points, the same target
        tx = torch.tensor(x + 0.1 * step, requires_grad=True)
        got = loss.terms(tx, persistence=vr_persistence(tx), true_persistence=target)
        want = fresh(tx.detach().clone().requires_grad_(True), target)
        assert {k: float(v.detach()) for k, v in got.items()} == {k: float(v.detach()) for k, v in want.items()}
        sum(got.values()).backward()
        assert torch.isfinite(tx.grad).all()
    assert len(prepared) == 2 + 2 * 3  # once for dsigma0 and dsigma1 here, the rest by the fresh losses
    with torch.no_grad():
        target.points.mul_(1.5)  # the target changed in place: prepared anew
    tx = torch.tensor(x)
    got = loss.terms(tx, persistence=vr_persistence(tx), true_persistence=target)
    assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in fresh(tx, target).items()}
    import copy
    import pickle

    assert copy.deepcopy(loss)._target_cache is None and pickle.loads(pickle.dumps(loss))._target_cache is None
    bad = vr_persistence(ty, max_dim=1).with_points(torch.full_like(ty, float("nan")))
    with pytest.raises(ValueError, match="true_points must hold finite"):
        loss.terms(tx, persistence=vr_persistence(tx), true_persistence=bad)
    with pytest.raises(ValueError, match="points must hold finite"):
        loss.terms(None, persistence=vr_persistence(tx).with_points(torch.full_like(tx, float("inf"))),
                   true_persistence=target)


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1.0, 1.0], "7 entries"),
        ([1, 1, 1, 1, 1, 1, 1, 1], "7 entries"),
        ({"bottleneck3": 1.0}, "unknown topological term"),
        ({"signature": 1.0}, "unknown topological term"),
        ([1, -1, 0, 0, 0, 0, 0], "must be >= 0"),
        ([1, float("nan"), 0, 0, 0, 0, 0], "must be finite"),
        ({"density": float("inf")}, "must be finite"),
        ("bottleneck0", "list of 7 numbers or a mapping"),
        ([1, "a", 0, 0, 0, 0, 0], "real number"),
        ({"bottleneck0": "1"}, "real number"),  # a string is not a weight, even one float() would read
    ],
)
def test_bad_weights_raise(weights, message):
    with pytest.raises(ValueError, match=message):
        L.TopologicalLoss(weights)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel_sigma": float("nan")}, "kernel_sigma"),
        ({"kernel_sigma": 0.0}, "kernel_sigma"),
        ({"density_sigma": float("inf")}, "density_sigma"),
        ({"entropy_delta": -1.0}, "entropy_delta"),
        ({"density_npoints": 0}, "density_npoints"),
        ({"wasserstein_q": 0.5}, "wasserstein_q"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        L.TopologicalLoss([1, 0, 0, 0, 0, 0, 0], **kwargs)


def test_bad_inputs_raise():
    good = torch.zeros((4, 2))
    good[1, 0] = 1.0
    with pytest.raises(ValueError, match="NaN or inf"):
        L.loss_bottleneck0(torch.full((4, 2), float("nan")), good)
    with pytest.raises(ValueError, match="^true_points contains NaN or inf"):  # the error names the bad cloud
        L.loss_dsigma0(good, torch.full((4, 2), float("inf")))
    with pytest.raises(ValueError, match="^true_points contains NaN or inf"):
        L.TopologicalLoss({"wasserstein0": 1.0})(good, torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="^points contains NaN or inf"):
        L.TopologicalLoss({"wasserstein0": 1.0})(torch.full((4, 2), float("nan")), good)
    with pytest.raises(ValueError, match=r"\(k, 2\)"):
        L.bottleneck_distance(torch.zeros((3, 3)), torch.zeros((3, 2)))
    with pytest.raises(ValueError, match="sigma"):
        L.loss_dsigma1(good, good, sigma=-1)
    with pytest.raises(ValueError, match="q must be >= 1"):
        L.loss_wasserstein0(good, good, q=0.5)
    with pytest.raises(ValueError, match="give either"):
        L.loss_bottleneck0(good, None)
    with pytest.raises(ValueError, match="degree 1 is needed"):
        L.loss_bottleneck1(good, good, persistence=vr_persistence(good, max_dim=0))


# ---------------------------------------------------------------- descent sanity


def test_bottleneck_descent_two_to_four_clusters():
    gen = torch.Generator().manual_seed(0)
    start = torch.cat([torch.rand(30, 2, generator=gen) * 0.8 - 0.4,
                       torch.rand(34, 2, generator=gen) * 0.8 - 0.4 + torch.tensor([10.0, 5.0])])
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-5.0, 4.0], [8.0, 13.0]])
    sizes = [30, 20, 30, 48]
    target = torch.cat([centers[i] + torch.rand(s, 2, generator=gen) * 0.6 - 0.3 for i, s in enumerate(sizes)])
    x = start.clone().double().requires_grad_(True)
    target = target.double()
    true_pers = vr_persistence(target)
    loss = L.TopologicalLoss([1, 1, 0, 0, 0, 0, 0])
    opt = torch.optim.Adam([x], lr=0.1)
    before = float(L.loss_bottleneck0(x.detach(), None, true_persistence=true_pers))
    for _ in range(300):
        opt.zero_grad()
        pers = vr_persistence(x)
        terms = loss.terms(x, persistence=pers, true_persistence=true_pers)
        # a term without a gradient path is replaced by push0 (spreads the clusters)
        value = sum(t if t.requires_grad else L.loss_push0(x, persistence=pers) for t in terms.values())
        value.backward()
        opt.step()
    after = float(L.loss_bottleneck0(x.detach(), None, true_persistence=true_pers))
    assert after <= 0.5 * before, (before, after)


# ---------------------------------------------------------------- degree 2 (voids)


def shells(rng, n=36, m=40):
    """Two noisy sphere samples of different radii: clouds with voids."""
    def shell(k, radius):
        x = rng.normal(size=(k, 3))
        return radius * x / np.linalg.norm(x, axis=1, keepdims=True) + 0.08 * rng.normal(size=(k, 3))
    return shell(n, 1.0), shell(m, 1.6)


def test_degree2_terms_equal_gudhi_and_numpy(rng):
    x, y = shells(rng)
    gx, gy = gudhi_diagrams(x, 2)[2], gudhi_diagrams(y, 2)[2]
    assert len(gx) and len(gy)
    tx, ty = torch.tensor(x), torch.tensor(y)
    assert float(L.loss_bottleneck2(tx, ty)) == pytest.approx(gudhi.bottleneck_distance(gx, gy), abs=1e-9)
    for q in (1.0, 2.0):
        expected = gudhi.wasserstein.wasserstein_distance(gx, gy, order=q, internal_p=np.inf)
        assert float(L.loss_wasserstein2(tx, ty, q=q)) == pytest.approx(expected, abs=1e-6)
    expected = (np_entropy(gx) - np_entropy(gy)) ** 2
    assert float(L.loss_persentropy2(tx, ty)) == pytest.approx(expected, abs=1e-10)
    for sigma in (0.05, 0.5):
        expected = np_kernel(gx, gx, sigma) + np_kernel(gy, gy, sigma) - 2 * np_kernel(gx, gy, sigma)
        assert float(L.loss_dsigma2(tx, ty, sigma=sigma)) == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("name", list(TERMS2))
def test_degree2_gradcheck_and_identity(rng, name):
    y, x = shells(rng, n=16, m=18)  # the learnable cloud has the larger void: every term has a gradient
    xt = torch.tensor(x, requires_grad=True)
    pers = vr_persistence(xt, max_dim=2)
    true_pers = vr_persistence(torch.tensor(y), max_dim=2)
    fn = TERMS2[name]
    assert fn(xt, None, persistence=pers, true_persistence=true_pers).requires_grad

    def f(z):
        return fn(z, None, persistence=pers.with_points(z), true_persistence=true_pers)

    assert torch.autograd.gradcheck(f, (xt,), eps=1e-7, atol=1e-5)
    assert abs(float(fn(xt, torch.tensor(x)).detach())) < 1e-12


def test_topological_loss_degree2_by_name(rng, monkeypatch):
    x, y = shells(rng)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y)
    weights = {"bottleneck2": 1.0, "wasserstein2": 0.5, "persentropy2": 2.0, "dsigma2": 0.1, "bottleneck0": 1.0}
    loss = L.TopologicalLoss(weights, kernel_sigma=0.5)
    assert loss.max_dim == 2 and L.TopologicalLoss([15, 15, 0, 0, 0, 0, 0]).max_dim == 1  # the 7-list keeps its meaning
    calls = []
    real = L.vr_persistence
    monkeypatch.setattr(terms, "vr_persistence",
                        lambda p, max_dim=1, **k: calls.append(max_dim) or real(p, max_dim=max_dim, **k))
    value = loss(tx, ty)
    assert calls == [2, 2]  # once per cloud, up to degree 2
    expected = (L.loss_bottleneck2(tx, ty) + 0.5 * L.loss_wasserstein2(tx, ty) + 2 * L.loss_persentropy2(tx, ty)
                + 0.1 * L.loss_dsigma2(tx, ty, sigma=0.5) + L.loss_bottleneck0(tx, ty))
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=1e-10)
    value.backward()
    assert torch.isfinite(tx.grad).all()
