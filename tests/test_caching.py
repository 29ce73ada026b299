"""Cache keys follow the code they depend on; broken cache files are recomputed."""

import shutil

import pytest
import torch

from topogen import caching


def test_dependencies_are_transitive():
    deps = caching.module_dependencies("training")
    assert {"training", "losses", "persistence", "models"} <= set(deps)
    assert "plotting" not in deps and "reproduce" not in deps
    with pytest.raises(ValueError, match="no module"):
        caching.module_dependencies("nope")


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the package sources the fingerprint reads, so the test can edit them."""
    copy = tmp_path / "topogen"
    shutil.copytree(caching.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(caching, "PACKAGE_DIR", copy)
    return copy


def test_editing_a_dependency_changes_the_fingerprint(package_copy):
    before = caching.code_fingerprint("training")
    assert caching.code_fingerprint("training") == before  # stable
    unrelated = package_copy / "plotting.py"
    unrelated.write_text(unrelated.read_text() + "\n# an edit elsewhere\n")
    assert caching.code_fingerprint("training") == before
    losses = package_copy / "losses.py"  # imported by training through its imports
    losses.write_text(losses.read_text() + "\n# a change to the regularizers\n")
    assert caching.code_fingerprint("training") != before


def test_editing_a_notebook_does_not_change_the_fingerprint(tmp_path):
    from topogen.paths import repo_root

    before = caching.code_fingerprint("training", "metrics")
    nb = tmp_path / "05.ipynb"  # a notebook's text is not part of any module
    shutil.copy(next((repo_root() / "notebooks").glob("05_*.ipynb")), nb)
    nb.write_text(nb.read_text().replace("# 05", "# 05 (edited markdown)"))
    assert caching.code_fingerprint("training", "metrics") == before


def test_load_recomputes_broken_files(tmp_path):
    path = tmp_path / "x.pt"
    assert caching.load(path) is None
    caching.save({"a": torch.arange(3)}, path)
    assert torch.equal(caching.load(path)["a"], torch.arange(3))
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable"):
        assert caching.load(path) is None
    assert not path.exists()
