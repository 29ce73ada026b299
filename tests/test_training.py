"""Paired training: identical starts and batches, determinism, logged terms."""

import numpy as np
import pytest
import torch
from conftest import weights_sum

from topogen.experiments.training import MODELS, TrainConfig, batch_schedule, mean_pairwise_distance, train_paired
from topogen.losses import TopologicalLoss

CONFIG = TrainConfig(steps=4, batch_size=32, eval_at=(2,))


def test_batch_schedule_covers_epochs():
    batches = batch_schedule(10, 4, 5, seed=0)
    assert len(batches) == 5 and all(len(b) == 4 for b in batches)
    assert len(set(np.concatenate(batches[:2]))) == 8  # one epoch has no repeats
    assert all(np.array_equal(a, b) for a, b in zip(batches, batch_schedule(10, 4, 5, seed=0), strict=True))
    with pytest.raises(ValueError):
        batch_schedule(3, 4, 1, 0)


def test_paired_runs_share_batches_and_are_deterministic(data):
    calls = []

    def evaluator(model):
        calls.append(model.training)
        return {"ok": 1.0}

    a = train_paired(data, 3, CONFIG, models=MODELS, evaluator=evaluator)
    b = train_paired(data, 3, CONFIG, models=MODELS)
    assert set(a) == set(MODELS)
    for name in MODELS:
        np.testing.assert_array_equal(a[name].bce, b[name].bce)
        np.testing.assert_array_equal(a[name].kld, b[name].kld)
        np.testing.assert_array_equal(a[name].batches, a["vae"].batches)
        assert sorted(a[name].evaluations) == [2, 4]
    assert calls and not any(calls)  # evaluated in eval mode
    assert set(a["topovae"].topo) == {"bottleneck0", "bottleneck1"}
    assert (a["topovae"].topo["bottleneck0"] > 0).all()
    # identical starts: the first step's loss terms are the same for every model
    assert len({a[name].bce[0] for name in MODELS}) == 1


def test_topovae_differs_only_through_a_gradient_path(data):
    logs = train_paired(data, 0, TrainConfig(steps=3, batch_size=32), models=("vae", "topovae", "topovae_z"))
    for name in ("topovae", "topovae_z"):
        if not logs[name].topo_grad.any():  # no gradient path: bitwise the VAE
            np.testing.assert_array_equal(logs[name].bce, logs["vae"].bce)
    assert logs["topovae_z"].topo_grad.any()  # rescaled latents: bars on both sides
    assert not np.array_equal(logs["topovae_z"].bce[1:], logs["vae"].bce[1:])


def test_mean_pairwise_distance_matches_cdist():
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    d = torch.cdist(x, x)
    expected = d[torch.triu_indices(7, 7, 1).unbind()].mean()
    assert torch.allclose(mean_pairwise_distance(x), expected)
    assert torch.autograd.gradcheck(mean_pairwise_distance, (x,))


def test_bad_config_and_models(data):
    with pytest.raises(ValueError, match="7 entries"):
        TrainConfig(weights=(1.0,))
    with pytest.raises(ValueError):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="subset"):
        train_paired(data, 0, CONFIG, models=("gan",))


def test_variants_with_their_own_weights(data):
    logs = train_paired(data, 1, CONFIG, models=("vae",),
                        variants={"entropy": ("topovae", {"persentropy0": 2.0}),
                                  "z_kernel": ("topovae_z", {"dsigma0": 1.0})})
    assert set(logs) == {"vae", "entropy", "z_kernel"}
    assert set(logs["entropy"].topo) == {"persentropy0"} and set(logs["z_kernel"].topo) == {"dsigma0"}
    assert logs["entropy"].topo_grad.all()  # the entropy term always has a gradient path
    np.testing.assert_array_equal(logs["entropy"].batches, logs["vae"].batches)
    with pytest.raises(ValueError, match="variant 'vae'"):
        train_paired(data, 1, CONFIG, models=("vae",), variants={"vae": ("topovae", [1] * 7)})
    with pytest.raises(ValueError, match="variant 'x'"):
        train_paired(data, 1, CONFIG, models=("vae",), variants={"x": ("gan", [1] * 7)})


def _record_noise(monkeypatch):
    """Record every reparameterization draw: (generator, noise)."""
    draws = []
    real = torch.randn

    def randn(*args, generator=None, **kwargs):
        out = real(*args, generator=generator, **kwargs)
        draws.append((generator, out.clone()))
        return out

    monkeypatch.setattr(torch, "randn", randn)
    return draws


def test_paired_noise_gives_identical_runs_for_identical_models(data, monkeypatch):
    draws = _record_noise(monkeypatch)
    logs = train_paired(data, 2, TrainConfig(steps=4, batch_size=32, noise="paired"), models=("vae",),
                        variants={"vae_b": ("vae", None)})
    np.testing.assert_array_equal(logs["vae"].bce, logs["vae_b"].bce)
    np.testing.assert_array_equal(logs["vae"].kld, logs["vae_b"].kld)
    assert len(draws) == 4  # identical losses: one shared trajectory, one draw per step ...
    alone = list(draws)
    draws.clear()
    train_paired(data, 2, TrainConfig(steps=4, batch_size=32), models=("vae",))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(alone, draws, strict=True))  # ... the noise of a model alone


class _GatedLoss(TopologicalLoss):
    """A TopologicalLoss whose value has a gradient path only from a chosen step on.

    Stateless: the step is read off the input batch (its pixel sum), and the
    first step with a gradient off the weight of ``wasserstein0``; losses
    without that term are left as they are.
    """

    first: dict = {}  # weight of wasserstein0 -> first step (0-based) with a gradient path
    step_of: dict = {}  # pixel sum of an input batch -> its step

    def forward(self, points=None, true_points=None, *, persistence=None, true_persistence=None):
        value = super().forward(points, true_points, persistence=persistence, true_persistence=true_persistence)
        if "wasserstein0" not in self.weights:
            return value
        step = self.step_of[float(true_persistence.points.sum())]
        return value if step >= self.first[self.weights["wasserstein0"]] else value.detach()


def test_shared_trajectories_split_mid_run_and_equal_training_each_model_alone(data, monkeypatch):
    import topogen.experiments.training as training
    from topogen.experiments.models import ConvVAE

    seed, config = 5, TrainConfig(steps=8, batch_size=32, eval_at=(3, 6))
    batches = batch_schedule(len(data.train_x), 32, 8, seed)
    _GatedLoss.step_of = {float(data.train_x[torch.from_numpy(b)].reshape(32, -1).sum()): t
                          for t, b in enumerate(batches)}
    assert len(_GatedLoss.step_of) == 8
    _GatedLoss.first = {1.0: 2, 2.0: 5, 3.0: 0, 4.0: 99}
    monkeypatch.setattr(training, "TopologicalLoss", _GatedLoss)
    variants = {name: ("topovae", {"wasserstein0": w}) for name, w in
                (("from3", 1.0), ("from6", 2.0), ("from1", 3.0), ("never", 4.0))}
    variants["z_from6"] = ("topovae_z_raw", {"wasserstein0": 2.0})
    forwards, evaluated = [], []
    original = ConvVAE.forward
    monkeypatch.setattr(ConvVAE, "forward", lambda self, *a, **k: forwards.append(1) or original(self, *a, **k))

    def evaluator(model):
        evaluated.append(1)
        return weights_sum(model)

    shared = train_paired(data, seed, config, ("vae",), evaluator=evaluator, keep_weights=True, variants=variants)
    first = {name: int(np.argmax(log.topo_grad)) for name, log in shared.items() if log.topo_grad.any()}
    assert first == {"from3": 2, "from6": 5, "from1": 0, "z_from6": 5}  # the splits happened mid-run
    # the VAE's trajectory (with "never") runs 8 steps; a model leaving at step f redoes it and runs on alone
    assert len(forwards) == 8 + sum(8 - f for f in first.values())
    assert len(evaluated) == 3 + 5 + 5  # once per trajectory: 3 after step 3, 5 after steps 6 and 8
    alone = {"vae": train_paired(data, seed, config, ("vae",), evaluator=evaluator, keep_weights=True)["vae"]}
    for name, spec in variants.items():
        alone[name] = train_paired(data, seed, config, (), evaluator=evaluator, keep_weights=True,
                                   variants={name: spec})[name]
    assert list(shared) == ["vae", *variants]
    for name, log in alone.items():
        for field in ("bce", "kld", "topo_grad", "batches"):
            np.testing.assert_array_equal(getattr(shared[name], field), getattr(log, field), err_msg=name)
        for term, values in log.topo.items():
            np.testing.assert_array_equal(shared[name].topo[term], values, err_msg=name)
        assert shared[name].evaluations == log.evaluations, name
        for key, value in log.state_dict.items():
            assert torch.equal(shared[name].state_dict[key], value), (name, key)
    np.testing.assert_array_equal(shared["never"].bce, shared["vae"].bce)
    assert not np.array_equal(shared["from3"].bce, shared["vae"].bce)
    # each model owns its evaluations, even when they were computed once
    shared["never"].evaluations[3]["weights"] = 0.0
    assert shared["vae"].evaluations[3]["weights"] != 0.0


def test_sequential_noise_is_one_stream_and_differs_only_by_the_noise(data, monkeypatch):
    seed, config = 2, TrainConfig(steps=4, batch_size=32, noise="sequential")
    real_randn = torch.randn
    draws = _record_noise(monkeypatch)
    logs = train_paired(data, seed, config, models=("vae",), variants={"vae_b": ("vae", None)})
    assert len({id(g) for g, _ in draws}) == 1  # one stream, the models draw in turn
    replay = torch.Generator().manual_seed(seed + 1)
    for _, eps in draws:  # the stream is the seeded one, read in order
        assert torch.equal(eps, real_randn(eps.shape, generator=replay))
    assert not np.array_equal(logs["vae"].bce, logs["vae_b"].bce)  # different noise, different runs
    np.testing.assert_array_equal(logs["vae"].batches, logs["vae_b"].batches)
    # The second VAE is exactly a VAE trained alone from the same init on the same batches with its own noise.
    theirs = [eps for i, (_, eps) in enumerate(draws) if i % 2 == 1]
    monkeypatch.setattr(torch, "randn", lambda *a, generator=None, **k: theirs.pop(0))
    alone = train_paired(data, seed, TrainConfig(steps=4, batch_size=32), models=("vae",))
    np.testing.assert_array_equal(alone["vae"].bce, logs["vae_b"].bce)
    np.testing.assert_array_equal(alone["vae"].kld, logs["vae_b"].kld)


def test_noise_protocol_and_signature_weight_are_validated():
    with pytest.raises(ValueError, match="noise must be one of"):
        TrainConfig(noise="shared")
    for bad in (-1.0, float("nan"), "a"):
        with pytest.raises(ValueError, match="signature_weight"):
            TrainConfig(signature_weight=bad)
