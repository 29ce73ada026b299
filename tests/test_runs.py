"""The run store: each model cached on its own, seeds split into units that equal the lockstep run."""

import numpy as np
import pytest
import torch
from conftest import weights_sum

from topogen.experiments.training import TrainConfig, train_paired


@pytest.mark.slow
def test_train_seeds_is_identical_whatever_n_jobs(data, tmp_path, monkeypatch):
    from topogen.experiments.runs import train_seeds

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
    from topogen.experiments.runs import train_paired_cached

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


@pytest.mark.slow
def test_models_trained_as_separate_units_equal_the_lockstep_run(data, tmp_path, monkeypatch):
    from topogen.experiments.runs import seed_units, train_seeds
    from topogen.reproduce.caching import fixed_threads

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=4, batch_size=32, eval_at=(2,), signature_weight=3.0)
    models = ("vae", "topovae", "topovae_z", "topovae_sig")
    variants = {"topovae_b0": ("topovae", {"bottleneck0": 5.0}), "placebo": ("vae", None)}
    assert len(seed_units(config, models, variants)) == 6
    split, hits = train_seeds(data, [1, 2], config, models, variants=variants, evaluator=weights_sum, n_jobs=1)
    assert hits == [False, False]
    for seed, runs in zip([1, 2], split, strict=True):
        with fixed_threads(1):
            lockstep = train_paired(data, seed, config, models, evaluator=weights_sum, variants=variants)
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
    again, hits = train_seeds(data, [1, 2], other, ("vae",), evaluator=weights_sum, n_jobs=1)
    assert hits == [True, True]
    np.testing.assert_array_equal(again[0]["vae"].bce, split[0]["vae"].bce)
    # ... while a TopoVAE with other weights is a new run
    assert train_seeds(data, [1], other, ("topovae",), evaluator=weights_sum, n_jobs=1)[1] == [False]


def test_sequential_noise_keeps_a_seed_in_one_unit():
    from topogen.experiments.runs import seed_units

    config = TrainConfig(noise="sequential")
    variants = {"placebo": ("vae", None)}
    assert seed_units(config, ("vae",), variants) == [(("vae",), variants)]
    assert seed_units(TrainConfig(), ("vae",), variants) == [(("vae",), None), ((), variants)]


def test_models_without_a_first_step_gradient_share_a_unit(data):
    from topogen.experiments.runs import seed_units
    from topogen.experiments.training import first_step_gradients

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
    from topogen.experiments.runs import train_paired_cached

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
    from topogen.experiments.runs import train_seeds

    config = TrainConfig(steps=2, batch_size=32, eval_at=())
    with pytest.raises(ValueError, match="variant 'vae' must be a new name"):
        train_seeds(data, [0], config, ("vae",), variants={"vae": ("vae", None)}, cache=False)
    with pytest.raises(ValueError, match="models must be a non-empty subset"):
        train_seeds(data, [0], config, ("vae", "gan"), cache=False)


def test_a_library_upgrade_changes_the_keys_of_runs_and_input_diagrams(data, tmp_path, monkeypatch):
    from topogen.experiments.inputs import input_persistence
    from topogen.experiments.runs import cache_key
    from topogen.reproduce import caching

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=2, batch_size=16)
    before = cache_key(data, 0, config, ("vae",))
    input_persistence(data, 0, config, 1)
    monkeypatch.setattr(caching, "library_versions", lambda: "torch 2.14.1, giotto-ph 99")  # giotto-ph alone
    assert cache_key(data, 0, config, ("vae",)) != before
    input_persistence(data, 0, config, 1)
    assert len(list(tmp_path.glob("inputs-*.pt"))) == 2


def test_data_that_differ_in_one_image_have_other_keys(data, tmp_path, monkeypatch):
    """The keys hash every image and label, not a prefix: a run on other data never reuses this data's cache."""
    from dataclasses import replace

    from topogen.experiments.metrics import _data_key
    from topogen.experiments.runs import cache_key

    train_x = data.train_x.clone()
    train_x[-1, 0, 0, 0] += 0.5
    other = replace(data, train_x=train_x)
    test_y = data.test_y.clone()
    test_y[-1] = (test_y[-1] + 1) % 10
    relabelled = replace(data, test_y=test_y)
    config = TrainConfig(steps=2, batch_size=16)
    assert len({cache_key(d, 0, config, ("vae",)) for d in (data, other, relabelled)}) == 3
    assert _data_key(data, 1, 0) != _data_key(other, 1, 0)


def test_the_checksum_does_not_change_how_the_data_pickle(data):
    """joblib keys a sweep's arguments by their pickle: computing the checksum must not change it."""
    import pickle
    from dataclasses import replace

    fresh = replace(data)
    before = pickle.dumps(fresh)
    assert fresh.checksum == data.checksum
    assert pickle.dumps(fresh) == before
    assert pickle.loads(before).checksum == data.checksum
