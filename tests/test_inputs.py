"""The input batches' persistence: cached once per seed and degree, the same runs as computing it in the loop."""

import numpy as np
import pytest
import torch

from topogen.experiments.training import TrainConfig, train_paired


def test_cached_input_persistence_gives_the_same_runs_and_is_computed_once(data, tmp_path, monkeypatch):
    from topogen.experiments import inputs, runs
    from topogen.reproduce.caching import fixed_threads

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    config = TrainConfig(steps=3, batch_size=32, eval_at=(), signature_weight=2.0)
    variants = {"voids": ("topovae", {"bottleneck2": 1.0, "bottleneck0": 1.0}),
                "clusters": ("topovae_z", {"bottleneck0": 1.0})}
    models = ("topovae", "topovae_z", "topovae_z_raw", "topovae_sig")
    with fixed_threads(1):
        direct = train_paired(data, 5, config, models, variants=variants)  # prefetched in the loop
        for degree, names in ((1, models[:3]), (0, ("topovae_sig",))):
            edges = inputs.input_persistence(data, 5, config, degree)
            given = train_paired(data, 5, config, names, input_edges=edges)
            for name in names:
                for term, values in direct[name].topo.items():
                    np.testing.assert_array_equal(given[name].topo[term], values, err_msg=name)
                np.testing.assert_array_equal(given[name].bce, direct[name].bce, err_msg=name)
        given = train_paired(data, 5, config, (), variants={"voids": variants["voids"]},
                             input_edges=inputs.input_persistence(data, 5, config, 2))
        np.testing.assert_array_equal(given["voids"].topo["bottleneck2"], direct["voids"].topo["bottleneck2"])
        np.testing.assert_array_equal(given["voids"].bce, direct["voids"].bce)
        assert len(list(tmp_path.glob("inputs-*.pt"))) == 3  # one per degree

        # the units of a seed share one computation: a second model finds it on disk
        computed = []
        original = inputs.prefetch_persistence
        monkeypatch.setattr(inputs, "prefetch_persistence", lambda *a, **k: computed.append(1) or original(*a, **k))
        runs.train_paired_cached(data, 6, config, ("topovae",))
        runs.train_paired_cached(data, 6, config, ("topovae_z",))
        runs.train_paired_cached(data, 6, config, ("vae",))  # needs no persistence
        assert computed == [1]
        # a broken file is recomputed, with a warning, and gives the same edges
        path = max(tmp_path.glob("inputs-*-s6-*.pt"), key=lambda p: p.stat().st_mtime)
        before = inputs.input_persistence(data, 6, config, 1)
        path.write_bytes(path.read_bytes()[:50])
        with pytest.warns(UserWarning, match="unreadable"):
            after = inputs.input_persistence(data, 6, config, 1)
        assert len(computed) == 2
        torch.save(after[:1], path)  # readable, but not this run's: recomputed too
        with pytest.warns(UserWarning, match="does not hold"):
            again = inputs.input_persistence(data, 6, config, 1)
        assert len(computed) == 3 and len(again) == config.steps
        for a, b in zip(before, after, strict=True):
            assert a["n_infinite"] == b["n_infinite"]
            assert all(torch.equal(x, y) for x, y in zip(a["edges"], b["edges"], strict=True))
    with pytest.raises(ValueError, match="input_edges"):
        train_paired(data, 6, config, ("topovae",), input_edges=before[:2])
    with pytest.raises(ValueError, match="input_edges"):
        train_paired(data, 6, config, ("topovae_sig",), input_edges=before)  # degree 1 given, degree 0 needed
