"""Cache keys follow the code they depend on; broken cache files are recomputed."""

import shutil

import pytest
import torch

from topogen.reproduce import caching


def test_dependencies_are_transitive():
    deps = caching.module_dependencies("experiments.training")
    assert {"experiments.training", "experiments.models", "experiments.inputs", "experiments._trajectory", "losses",
            "terms", "persistence", "distances"} <= set(deps)
    assert "experiments.plots" not in deps and not [d for d in deps if d.startswith("reproduce")]  # machinery
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
    before = caching.code_fingerprint("experiments.training")
    assert caching.code_fingerprint("experiments.training") == before  # stable
    unrelated = package_copy / "experiments" / "plots.py"
    unrelated.write_text(unrelated.read_text() + "\nEDITED = 1\n")
    assert caching.code_fingerprint("experiments.training") == before
    terms = package_copy / "terms.py"  # imported by training through losses
    terms.write_text(terms.read_text().replace("delta=1e-3", "delta=1e-4", 1))
    after = caching.code_fingerprint("experiments.training")
    assert after != before
    runner = package_copy / "reproduce" / "runner.py"  # machinery: never part of a key
    runner.write_text(runner.read_text() + "\nEDITED = 1\n")
    assert caching.code_fingerprint("experiments.training") == after


def test_docstrings_comments_and_layout_are_not_part_of_the_fingerprint(package_copy):
    """What cannot change a result keeps the caches; a string that is not a docstring is code."""
    before = caching.code_fingerprint("experiments.training")
    losses = package_copy / "losses.py"  # imported by training
    source = losses.read_text()
    edited = source.replace('"""', '"""Edited. ', 1)  # the module docstring
    edited = edited.replace("\nclass ", "\n\n# a new comment\n\nclass ", 1)  # a comment and blank lines
    edited = edited.replace("    def forward(self", '    def forward(  # wrapped\n        self', 1)  # layout
    assert edited.count("Edited. ") == 1 and "# a new comment" in edited and "# wrapped" in edited
    losses.write_text(edited)
    assert caching.code_fingerprint("experiments.training") == before
    losses.write_text(edited + '\n_NOTE = "a string constant is code"\n')
    assert caching.code_fingerprint("experiments.training") != before


def test_an_import_added_by_an_edit_joins_the_fingerprint(package_copy):
    """The imports are parsed once per edit of a module, and again after it."""
    assert "experiments.plots" not in caching.module_dependencies("experiments.training")
    training = package_copy / "experiments" / "training.py"
    training.write_text(training.read_text() + "\nfrom . import plots  # noqa: E402,F401\n")
    assert "experiments.plots" in caching.module_dependencies("experiments.training")
    before = caching.code_fingerprint("experiments.training")
    plots = package_copy / "experiments" / "plots.py"
    plots.write_text(plots.read_text() + "\nEDITED = 1  # now a dependency of training\n")
    assert caching.code_fingerprint("experiments.training") != before


def test_editing_a_notebook_does_not_change_the_fingerprint(tmp_path):
    from topogen.reproduce.paths import repo_root

    before = caching.code_fingerprint("experiments.training", "experiments.metrics")
    nb = tmp_path / "05.ipynb"  # a notebook's text is not part of any module
    shutil.copy(next((repo_root() / "notebooks").glob("05_*.ipynb")), nb)
    nb.write_text(nb.read_text().replace("# 05", "# 05 (edited markdown)"))
    assert caching.code_fingerprint("experiments.training", "experiments.metrics") == before


def test_load_recomputes_broken_files(tmp_path):
    path = tmp_path / "x.pt"
    assert caching.load(path) is None
    caching.save({"a": torch.arange(3)}, path)
    assert torch.equal(caching.load(path)["a"], torch.arange(3))
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable"):
        assert caching.load(path) is None
    assert not path.exists()
