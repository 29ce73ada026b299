"""Clouds and the deformation loop on tiny clouds."""

import numpy as np
import pytest
import torch

from topogen.experiments import deformation as S
from topogen.experiments.clouds import EXPERIMENTS, circle, clusters, filled_ball, make_experiment, segments, sphere
from topogen.persistence import vr_persistence


def test_generators_shapes_and_seeds():
    a = clusters([(0, 0), (5, 5)], [3, 4], 0.5, seed=1)
    b = clusters([(0, 0), (5, 5)], [3, 4], 0.5, seed=1)
    assert a.shape == (7, 2) and torch.equal(a, b)
    assert (a[:3].abs() <= 0.5).all() and ((a[3:] - 5).abs() <= 0.5).all()
    assert segments(32, 0.1).shape == (64, 2)
    c = circle(100, 5.0)
    np.testing.assert_allclose(c.norm(dim=1).numpy(), 5.0)
    for name in EXPERIMENTS:
        exp = make_experiment(name)
        assert exp.start.shape[1] == 2 and exp.target.shape[1] == 2
    assert make_experiment("three_clusters").start.shape == (64, 2)
    assert make_experiment("four_clusters").target.shape == (128, 2)
    with pytest.raises(ValueError, match="unknown experiment"):
        make_experiment("torus")


def test_counts_on_known_clouds():
    target = vr_persistence(clusters([(0, 0), (10, 0), (0, 10)], [5, 5, 5], 0.2, seed=0))
    thresholds = S.significance_thresholds(target)
    assert S.count_features(target, thresholds) == (3, 0)
    ring = vr_persistence(circle(40, 3.0))
    assert S.count_features(ring, S.significance_thresholds(ring)) == (1, 1)


def test_deform_reaches_three_clusters_from_two():
    start = clusters([(0, 0), (4, 0)], [6, 6], 0.3, seed=0)
    target = torch.tensor([(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)], dtype=torch.float64)
    hist = S.deform(start, target, steps=400, lr=0.05, snapshots=5)
    out = S.outcome(hist)
    assert out["clusters_target"] == 3 and out["clusters_start"] == 2
    assert out["clusters_end"] == 3
    assert out["bottleneck0_end"] < 0.5 * out["bottleneck0_start"]
    assert hist.snapshot_steps[0] == 0 and hist.snapshot_steps[-1] == 400 and len(hist.clouds) == 5
    assert hist.loss.shape == (400,) and set(hist.terms) == {"bottleneck0", "bottleneck1"}
    assert hist.fallback_steps.any()  # a target bar had to be created by push0


def test_deform_is_deterministic():
    start = clusters([(0, 0), (4, 0)], [5, 5], 0.3, seed=2)
    target = clusters([(0, 0), (4, 0), (0, 4)], [4, 4, 4], 0.2, seed=3)
    a = S.deform(start, target, steps=30, lr=0.05, snapshots=3)
    b = S.deform(start, target, steps=30, lr=0.05, snapshots=3)
    np.testing.assert_array_equal(a.final, b.final)
    np.testing.assert_array_equal(a.loss, b.loss)


@pytest.mark.parametrize("rule", S.FALLBACKS)
def test_fallback_rules_run(rule):
    start = clusters([(0, 0), (4, 0)], [5, 5], 0.3, seed=2)
    hist = S.deform(start, circle(12, 2.0), steps=10, lr=0.05, fallback=rule, snapshots=2)
    if rule == "none":
        assert not hist.fallback_steps.any()
    assert np.isfinite(hist.final).all()


@pytest.mark.parametrize("name, alike", [("three_clusters", {"dominant", "step", "none"}),
                                         ("circle", {"dominant", "term"})])
def test_which_fallback_rules_move_the_cloud_as_the_dominant_rule(name, alike):
    """On three clusters only the degree-1 term loses its path (not the larger one); on the circle the loop term."""
    exp = make_experiment(name)
    runs = {rule: S.deform(exp.start, exp.target, steps=40, lr=exp.lr, fallback=rule, snapshots=3)
            for rule in S.FALLBACKS}
    ref = runs["dominant"]
    same = {rule for rule, hist in runs.items() if np.array_equal(hist.final, ref.final)
            and np.array_equal(hist.loss, ref.loss) and np.array_equal(hist.fallback_steps, ref.fallback_steps)}
    assert same == alike


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0}, "steps"),
        ({"lr": float("nan")}, "lr"),
        ({"fallback": "always"}, "fallback"),
        ({"snapshots": 1}, "snapshots"),
        ({"weights": [1, 1]}, "7 entries"),
    ],
)
def test_deform_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        S.deform(circle(8), circle(8), **kwargs)


def test_deform_bad_clouds():
    with pytest.raises(ValueError, match=r"\(N, D\) cloud with D = 3"):
        S.deform(np.zeros((5, 3)), circle(8), steps=1)  # a 3-D start and a 2-D target
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        S.deform(np.zeros(5), circle(8), steps=1)


@pytest.mark.slow
def test_ball_to_sphere_gains_a_void():
    """The 3-D experiment: degree-2 terms open a void in a filled ball (short run)."""
    exp = make_experiment("ball_to_sphere", seed=0)
    assert exp.start.shape == (80, 3) and exp.weights == {"bottleneck0": 1.0, "bottleneck2": 1.0}
    hist = S.deform(exp.start, exp.target, exp.weights, steps=600, lr=exp.lr, snapshots=3)
    assert set(hist.diagrams[-1]) == {0, 1, 2} and set(hist.target_diagrams) == {0, 1, 2}
    out = S.outcome(hist)
    assert out["voids_target"] == 1 and out["voids_start"] == 0
    assert out["bottleneck2_end"] < 0.8 * out["bottleneck2_start"]
    assert np.linalg.norm(sphere(50, 2.0).numpy(), axis=1) == pytest.approx(2.0)
    radius = np.linalg.norm(filled_ball(200, 1.0, seed=1).numpy(), axis=1)
    assert radius.max() <= 1.0 and radius.min() < 0.5


def test_a_cloud_that_stops_moving_is_recorded_without_recomputing_the_rest(monkeypatch):
    start = clusters([(0, 0), (4, 0)], [6, 6], 0.3, seed=0)
    target = torch.tensor([(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)], dtype=torch.float64)
    weights = [1.0, 0, 0, 0, 0, 0, 0]
    calls = []
    original = S.vr_persistence
    monkeypatch.setattr(S, "vr_persistence", lambda *a, **k: calls.append(1) or original(*a, **k))
    hist = S.deform(start, target, weights, steps=40, lr=0.05, fallback="none", snapshots=5)
    # the missing third cluster is a target bar matched to the diagonal: no gradient path, nothing moves
    assert hist.steps_run == 1 and len(calls) < 5
    assert hist.snapshot_steps == [0, 10, 20, 30, 40] and len(hist.clouds) == len(hist.diagrams) == 5
    for cloud, diagrams in zip(hist.clouds, hist.diagrams, strict=True):
        np.testing.assert_array_equal(cloud, start.numpy())
        np.testing.assert_array_equal(diagrams[0], hist.diagrams[0][0])
    assert hist.loss.shape == (40,) and (hist.loss == hist.loss[0]).all() and not hist.fallback_steps.any()
    # what any later step computes: the same values, and the cloud stays where it is
    monkeypatch.setattr(S, "vr_persistence", original)
    one = S.deform(hist.final, target, weights, steps=1, lr=0.05, fallback="none", snapshots=2)
    assert one.loss[0] == hist.loss[-1] and one.terms["bottleneck0"][0] == hist.terms["bottleneck0"][-1]
    np.testing.assert_array_equal(one.final, hist.final)
    # with a fallback the cloud moves and every step is computed
    moving = S.deform(start, target, weights, steps=40, lr=0.05, snapshots=5)
    assert moving.steps_run == 40 and not np.array_equal(moving.final, start.numpy())
