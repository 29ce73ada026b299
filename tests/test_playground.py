"""The deformation playground: each widget action is one library call, and gives its bits."""

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from topogen.experiments import playground as P  # noqa: E402
from topogen.experiments.deformation import deform  # noqa: E402


def _same(a, b):
    assert a.snapshot_steps == b.snapshot_steps
    for x, y in zip(a.clouds, b.clouds, strict=True):
        assert x.tobytes() == y.tobytes()
    assert a.loss.tobytes() == b.loss.tobytes() and a.fallback_steps.tobytes() == b.fallback_steps.tobytes()


def test_run_equals_the_library_call_to_the_bit():
    pg = P.Playground(n=32, steps=40)
    pg.target.value = "loop"  # what a user changes in the widgets
    pg.weights.value = "bottleneck0=1, bottleneck1=0.5"
    pg.lr.value = 0.1
    pg.seed.value = 3
    pg.button.click()  # Run
    direct = deform(P.start_cloud("clusters", 32, 2, 3), P.target_cloud("loop", 32, 4, 4),
                    {"bottleneck0": 1.0, "bottleneck1": 0.5}, steps=40, lr=0.1, seed=3, snapshots=30)
    assert pg.history is not None
    _same(pg.history, direct)
    _same(P.playground_run(*pg.clouds(), P.parse_weights(pg.weights.value), steps=40, lr=0.1, seed=3), direct)
    assert pg.history.settings["steps"] == 40


def test_a_ball_grows_a_void_and_arrays_are_accepted():
    pg = P.Playground(start="ball", target="void", n=24, weights="bottleneck0=1, bottleneck2=1", steps=20)
    assert pg.run() is not None and pg.history.final.shape == (24, 3)
    points = np.random.default_rng(0).normal(size=(20, 2))
    own = P.Playground(start_points=points, target="loop", n=20, steps=10)
    assert np.array_equal(own.clouds()[0].numpy(), points)
    assert own.run() is not None


def test_bad_settings_are_named():
    pg = P.Playground(start="ball", target="clusters", n=16, steps=10)
    assert pg.run() is None  # shown in the output, not raised into the event loop
    assert "D = 3 (the start's)" in pg.message  # deform's own check names the mismatch
    with pytest.raises(ValueError, match="term=weight"):
        P.parse_weights("bottleneck0 1")
    with pytest.raises(ValueError, match="at least one term"):
        P.parse_weights(" , ")
    with pytest.raises(ValueError, match="unknown start"):
        P.start_cloud("torus")
    with pytest.raises(ValueError, match="k = 9 clusters"):
        P.target_cloud("clusters", n=8, k=9)
    with pytest.raises(ValueError, match=r"\(n, 2\) or \(n, 3\)"):
        P.start_cloud(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"D = 3 \(the start's\)"):
        P.playground_run(P.start_cloud("ball", 16), P.target_cloud("loop", 16), {"bottleneck0": 1.0})
