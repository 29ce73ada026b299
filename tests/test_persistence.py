"""Diagrams, gradients and input checks of topogen.persistence, against gudhi."""

import gudhi
import numpy as np
import pytest
import torch
from conftest import gudhi_diagrams, sort_diagram

from topogen.persistence import edge_lengths, pairwise_distances, prefetch_persistence, vr_persistence


def assert_same_diagrams(points: np.ndarray, atol: float = 1e-5, max_dim: int = 1) -> None:
    expected = gudhi_diagrams(points, max_dim)
    pers = vr_persistence(torch.tensor(points), max_dim=max_dim)
    for dim in range(max_dim + 1):
        ours = sort_diagram(pers.diagram(dim).detach().numpy())
        theirs = sort_diagram(expected[dim])
        assert ours.shape == theirs.shape, (dim, ours.shape, theirs.shape)
        np.testing.assert_allclose(ours, theirs, atol=atol, rtol=0)


@pytest.mark.parametrize("n", [8, 32, 100, 256])
def test_random_2d_matches_gudhi(rng, n):
    assert_same_diagrams(rng.normal(size=(n, 2)))


@pytest.mark.parametrize("n", [8, 64, 128])
def test_random_784d_matches_gudhi(rng, n):
    assert_same_diagrams(rng.random((n, 784)))


def test_mnist_like_batch_matches_gudhi(rng):
    # sparse, clipped "images": many coordinates exactly 0 or 1
    x = np.clip(rng.normal(0.2, 0.5, size=(96, 784)), 0, 1)
    assert_same_diagrams(x)


@pytest.mark.parametrize(
    "points",
    [
        np.array([[0.0, 0.0], [1.0, 0.0]]),  # two points
        np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [3.0, 1.0]]),  # duplicates
        np.c_[np.arange(10.0), 2 * np.arange(10.0)],  # collinear, equally spaced (ties)
        np.c_[np.cos(np.linspace(0, 2 * np.pi, 12, endpoint=False)),
              np.sin(np.linspace(0, 2 * np.pi, 12, endpoint=False))],
        np.zeros((5, 3)),  # all points equal
    ],
    ids=["two-points", "duplicates", "collinear", "regular-12-gon", "all-equal"],
)
def test_degenerate_clouds_match_gudhi(points):
    assert_same_diagrams(points)


@pytest.mark.parametrize("max_dim", [0, 1, 2])
@pytest.mark.parametrize(
    "cloud",
    ["sphere-3d", "digits-like-784d", "duplicates", "grid-ties"],
)
def test_generators_are_ripser_parallels(rng, cloud, max_dim):
    # vr_persistence calls giotto-ph's binding directly; this holds it to the public call, pair for pair, in order.
    from gph import ripser_parallel

    from topogen.persistence import _generators

    x = {
        "sphere-3d": rng.normal(size=(60, 3)),
        "digits-like-784d": np.clip(rng.normal(0.2, 0.5, size=(48, 784)), 0, 1),
        "duplicates": np.repeat(rng.normal(size=(12, 4)), 3, axis=0),
        "grid-ties": np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2),
    }[cloud]
    dist = pairwise_distances(torch.tensor(x))
    ours = _generators(dist, max_dim, float(dist.max(axis=1).min()))
    finite_0, finite_higher, essential_0, essential_higher = ripser_parallel(
        dist, metric="precomputed", maxdim=max_dim, coeff=2, return_generators=True)["gens"]
    np.testing.assert_array_equal(np.asarray(ours.finite_0, dtype=np.int64).reshape(-1, 3), finite_0)
    np.testing.assert_array_equal(np.asarray(ours.essential_0, dtype=np.int64), essential_0)
    assert len(ours.finite_higher) == len(finite_higher) == len(ours.essential_higher) == max_dim
    for a, b in zip(ours.finite_higher, finite_higher, strict=True):
        np.testing.assert_array_equal(np.asarray(a, dtype=np.int64).reshape(-1, 4), b)
    for a, b in zip(ours.essential_higher, essential_higher, strict=True):
        np.testing.assert_array_equal(np.asarray(a, dtype=np.int64).reshape(-1, 2), b)
    assert len(finite_0) > 0


def test_polygon_has_one_loop():
    theta = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    pers = vr_persistence(np.c_[np.cos(theta), np.sin(theta)])
    dgm1 = pers.diagram(1)
    assert dgm1.shape == (1, 2)
    assert pers.n_infinite == (1, 0)
    # birth = side length, death = the longest diagonal triangle's longest side
    np.testing.assert_allclose(dgm1[0, 0].item(), 2 * np.sin(np.pi / 12), rtol=1e-12)


def test_degree_zero_fast_path(rng):
    x = rng.normal(size=(40, 5))
    p0, p1 = vr_persistence(x, max_dim=0), vr_persistence(x, max_dim=1)
    assert p0.max_dim == 0 and len(p0.birth_edges1) == 0
    torch.testing.assert_close(sort_diagram(p0.diagram(0).numpy()), sort_diagram(p1.diagram(0).numpy()))
    with pytest.raises(ValueError, match="degree 1 was not computed"):
        p0.diagram(1)


def test_numpy_and_image_shaped_input(rng):
    x = rng.random((16, 1, 4, 4))
    pers = vr_persistence(x)
    assert pers.points.shape == (16, 16)
    assert pers.diagram(0).dtype == torch.float64
    xt = torch.tensor(x, dtype=torch.float32)
    assert vr_persistence(xt).diagram(0).dtype == torch.float32


def test_critical_edges_have_the_right_lengths(rng):
    x = torch.tensor(rng.normal(size=(30, 3)))
    pers = vr_persistence(x)
    d = torch.cdist(x, x)
    e = pers.death_edges0
    torch.testing.assert_close(pers.diagram(0)[:, 1], d[e[:, 0], e[:, 1]])
    b, k = pers.birth_edges1, pers.death_edges1
    torch.testing.assert_close(pers.diagram(1), torch.stack([d[b[:, 0], b[:, 1]], d[k[:, 0], k[:, 1]]], 1))
    expected = d.numpy().copy()
    np.fill_diagonal(expected, 0.0)  # cdist leaves ~1e-8 of cancellation noise there
    np.testing.assert_allclose(pers.distances, expected, atol=1e-10)  # kept for reuse
    assert pers.with_points(x * 2).distances is None  # not valid for another cloud


def test_gradcheck_generic_cloud(rng):
    x = torch.tensor(rng.normal(size=(12, 3)), requires_grad=True)
    pers = vr_persistence(x)

    def f(y):
        p = pers.with_points(y)
        return p.diagram(0)[:, 1], p.diagram(1)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6)


def test_gradient_of_diagram_matches_finite_differences_end_to_end(rng):
    # recompute persistence at every perturbation: generic clouds keep their pairing
    x = rng.normal(size=(10, 2))

    def total(arr):
        p = vr_persistence(torch.tensor(arr))
        return float(p.diagram(0)[:, 1].sum() + (p.diagram(1)[:, 1] - p.diagram(1)[:, 0]).sum())

    xt = torch.tensor(x, requires_grad=True)
    p = vr_persistence(xt)
    (p.diagram(0)[:, 1].sum() + (p.diagram(1)[:, 1] - p.diagram(1)[:, 0]).sum()).backward()
    eps = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        num[idx] = (total(hi) - total(lo)) / (2 * eps)
    np.testing.assert_allclose(xt.grad.numpy(), num, atol=1e-5)


def test_duplicates_give_finite_gradients():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]], requires_grad=True)
    pers = vr_persistence(x)
    loss = pers.diagram(0).sum() + pers.diagram(1).sum()
    loss.backward()
    assert torch.isfinite(x.grad).all()
    # zero-length edges are safe too
    edges = torch.tensor([[0, 1], [2, 3]])
    y = x.detach().clone().requires_grad_(True)
    edge_lengths(y, edges).sum().backward()
    assert torch.isfinite(y.grad).all()
    assert torch.equal(y.grad[0], torch.zeros(2))


def test_runs_on_the_points_device(rng):
    x = torch.tensor(rng.normal(size=(10, 2)), device="cpu")
    assert vr_persistence(x).diagram(1).device == x.device


def test_pairwise_distances_match_the_definition(rng):
    x = torch.tensor(rng.normal(size=(40, 784)) * 3.0, dtype=torch.float32)
    x[7] = x[3]  # a duplicate: the Gram formula's cancellation leaves about 1e-6 there, never NaN
    d = pairwise_distances(x)
    ref = np.linalg.norm(x.double().numpy()[:, None] - x.double().numpy()[None], axis=2)
    assert d.dtype == np.float64 and not np.diag(d).any()
    np.testing.assert_allclose(d, ref, rtol=1e-12, atol=1e-5)


@pytest.mark.parametrize("copies", [2, 3])
def test_repeated_points_match_gudhi_but_for_zero_length_bars(rng, copies):
    # The Gram formula puts copies of a generic point about 1e-8 |x| apart, not 0, so the diagrams may keep
    # zero-length bars, such as (0, 0) in degree 0, that gudhi drops; every other bar is gudhi's.
    x = np.repeat(rng.normal(size=(12, 3)) * 3.0, copies, axis=0)
    pers, expected = vr_persistence(torch.tensor(x), max_dim=2), gudhi_diagrams(x, 2)
    for dim in range(3):
        dgm = pers.diagram(dim).detach().numpy()
        kept = dgm[dgm[:, 1] > dgm[:, 0]]
        np.testing.assert_allclose(sort_diagram(kept), sort_diagram(expected[dim]), atol=1e-12)


@pytest.mark.parametrize("offset, spread", [(1e4, 1e-4), (1e6, 1e-2), (1e7, 1e-2)])
def test_a_small_cloud_far_from_the_origin_is_within_the_gram_formulas_rounding(rng, offset, spread):
    # |x|^2 + |y|^2 - 2 x.y errs by up to ~8 eps max|x|^2, so a distance by delta = sqrt(8 eps) max|x|; the edges
    # chosen on it (and rounded to float32 by giotto-ph) but measured on the points are within twice that of gudhi's.
    x = rng.normal(size=(30, 3)) * spread + offset
    pers, expected = vr_persistence(torch.tensor(x)), gudhi_diagrams(x, 1)
    largest = np.linalg.norm(x[:, None] - x[None], axis=2).max()
    delta = np.sqrt(8 * np.finfo(float).eps) * np.linalg.norm(x, axis=1).max() + 2.0**-24 * largest
    for dim in (0, 1):
        assert gudhi.bottleneck_distance(pers.diagram(dim).detach().numpy(), expected[dim]) <= 2 * delta


@pytest.mark.parametrize(
    "points, message",
    [
        (torch.tensor([[0.0, float("nan")], [1.0, 1.0]]), "NaN or inf"),
        (torch.tensor([[0.0, float("inf")], [1.0, 1.0]]), "NaN or inf"),
        (torch.tensor([[0.0, 1e200], [1.0, -1e200]], dtype=torch.float64), "too large"),
        (torch.zeros((1, 3)), "at least 2 points"),
        (torch.tensor(1.0), "at least 2 dimensions"),
        (torch.zeros(5), "at least 2 dimensions"),
        (torch.zeros((4, 2), dtype=torch.int64), "floating dtype"),
        (np.zeros((4, 2), dtype=np.int32), "floating dtype"),
        ([[0.0, 1.0], [1.0, 0.0]], "torch.Tensor or numpy.ndarray"),
        (torch.zeros((4, 0)), "no coordinates"),
    ],
)
def test_bad_points_raise(points, message):
    with pytest.raises(ValueError, match=message):
        vr_persistence(points)
    with pytest.raises(ValueError, match="^batch "):  # every message names the cloud as its caller does
        vr_persistence(points, name="batch")


@pytest.mark.parametrize("max_dim", [-1, 3, 1.0, True, "1", None])
def test_bad_max_dim_raises(max_dim):
    with pytest.raises(ValueError, match="max_dim"):
        vr_persistence(torch.zeros((3, 2)), max_dim=max_dim)


# ---------------------------------------------------------------- degree 2 (voids)


def sphere(n, rng, radius=1.0, noise=0.0):
    x = rng.normal(size=(n, 3))
    x = radius * x / np.linalg.norm(x, axis=1, keepdims=True)
    return x + noise * rng.normal(size=x.shape)


def torus(n, rng, big=2.0, small=0.8):
    u, v = rng.uniform(0, 2 * np.pi, size=(2, n))
    return np.c_[(big + small * np.cos(v)) * np.cos(u), (big + small * np.cos(v)) * np.sin(u), small * np.sin(v)]


@pytest.mark.parametrize("n", [12, 30, 45])
def test_degree2_random_3d_matches_gudhi(rng, n):
    assert_same_diagrams(rng.normal(size=(n, 3)), max_dim=2)


@pytest.mark.parametrize("cloud", ["sphere", "noisy-sphere", "torus", "octahedron", "duplicates", "all-equal"])
def test_degree2_shapes_and_degenerate_clouds_match_gudhi(rng, cloud):
    points = {
        "sphere": lambda: sphere(40, rng),
        "noisy-sphere": lambda: sphere(45, rng, noise=0.05),
        "torus": lambda: torus(45, rng),
        "octahedron": lambda: np.r_[np.eye(3), -np.eye(3)],  # ties everywhere, one void
        "duplicates": lambda: np.repeat(sphere(14, rng), 2, axis=0),
        "all-equal": lambda: np.zeros((6, 3)),
    }[cloud]()
    assert_same_diagrams(points, max_dim=2)


def test_sphere_has_one_dominant_void(rng):
    pers = vr_persistence(sphere(60, rng), max_dim=2)
    dgm2 = pers.diagram(2).detach().numpy()
    life = np.sort(dgm2[:, 1] - dgm2[:, 0])[::-1]
    assert len(life) >= 1 and life[0] > 0.5 and (len(life) == 1 or life[0] > 5 * life[1])
    assert pers.n_infinite == (1, 0, 0) and pers.max_dim == 2
    octa = vr_persistence(np.r_[np.eye(3), -np.eye(3)], max_dim=2).diagram(2)
    np.testing.assert_allclose(octa.numpy(), [[np.sqrt(2), 2.0]])


def test_degree2_only_when_asked(rng):
    pers = vr_persistence(sphere(20, rng), max_dim=1)
    assert pers.birth_edges2 is None
    with pytest.raises(ValueError, match="degree 2 was not computed"):
        pers.diagram(2)
    with pytest.raises(ValueError, match="dim must be 0, 1 or 2"):
        pers.diagram(3)


def test_degree2_gradcheck(rng):
    x = torch.tensor(sphere(16, rng, noise=0.1), requires_grad=True)
    pers = vr_persistence(x, max_dim=2)
    assert len(pers.diagram(2)) >= 1

    def f(z):
        return pers.with_points(z).diagram(2)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-7, atol=1e-6)
    diagrams = pers.diagrams()
    assert set(diagrams) == {0, 1, 2}
    np.testing.assert_array_equal(diagrams[2].detach().numpy(), pers.diagram(2).detach().numpy())


def test_pair_lengths_is_one_gather_of_the_edges(rng):
    from topogen.persistence import pair_lengths

    x = torch.tensor(rng.normal(size=(20, 3)))
    pers = vr_persistence(x, max_dim=2)
    extra = torch.tensor([[0, 5], [3, 7]])
    lengths, extra_lengths = pair_lengths(x, [pers.edges(0), pers.edges(1), pers.edges(2)], extra)
    assert lengths[0][0] is None and torch.equal(lengths[0][1], edge_lengths(x, pers.death_edges0))
    assert torch.equal(lengths[1][0], edge_lengths(x, pers.birth_edges1))
    assert torch.equal(lengths[2][1], edge_lengths(x, pers.death_edges2))
    assert torch.equal(extra_lengths, edge_lengths(x, extra))
    assert pair_lengths(x, [pers.edges(0)])[1] is None


def test_prefetch_persistence_equals_the_loop(data):
    batches = [data.train_x[i * 16:(i + 1) * 16] for i in range(5)]
    seen = list(prefetch_persistence(iter(batches), max_dim=1, ahead=2))
    assert len(seen) == 5
    for x, (y, pers) in zip(batches, seen, strict=True):
        assert y is x
        direct = vr_persistence(x.reshape(16, -1), max_dim=1)
        for d in (0, 1):
            assert torch.equal(pers.diagram(d), direct.diagram(d))
    assert list(prefetch_persistence([], max_dim=0)) == []
    with pytest.raises(ValueError, match="ahead"):
        next(prefetch_persistence(batches, ahead=0))


def test_prefetch_persistence_raises_at_the_bad_batch_and_stops_cleanly():
    import threading

    bad = [torch.rand(8, 3), torch.rand(8, 3), torch.full((8, 3), float("nan")), torch.rand(8, 3)]
    stream = prefetch_persistence(bad, max_dim=0, ahead=2)
    assert [len(x) for x, _ in (next(stream), next(stream))] == [8, 8]  # the batches before it are delivered
    with pytest.raises(ValueError, match="NaN or inf"):
        next(stream)
    with pytest.raises(ValueError, match="batches must be tensors .* got a tuple"):
        next(prefetch_persistence([(torch.rand(8, 3), torch.zeros(8))]))  # a data loader's (images, labels)

    def endless():
        while True:
            yield torch.rand(32, 5)

    before = threading.active_count()
    for i, _ in enumerate(prefetch_persistence(endless(), max_dim=1, ahead=3)):
        if i == 2:
            break  # the generator is closed here: its worker thread ends, nothing waits on the endless stream
    assert threading.active_count() == before
