"""The package's three layers: the library, the paper's experiments, the reproduction machinery.

Data flows one way: the library imports neither of the others; the machinery
imports only the library; the experiments build on both. Every module and
function stays small enough to read in one sitting.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "topogen"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "library"


def _imported_layers(path: Path) -> set[str]:
    """The topogen layers a module imports (relative or absolute imports)."""
    layers = set()
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for topogen/x.py, 1 for topogen/experiments/x.py
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(path.relative_to(PACKAGE).parts[:depth])[: depth - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [node.names[0].name])
            elif node.module and node.module.startswith("topogen"):
                parts = node.module.split(".")[1:] or [node.names[0].name]
            else:
                continue
            layers.add(parts[0] if parts and parts[0] in ("experiments", "reproduce") else "library")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "topogen":
                    layers.add(parts[1] if len(parts) > 1 and parts[1] in ("experiments", "reproduce") else "library")
    return layers


ALLOWED = {"library": {"library"}, "reproduce": {"library", "reproduce"},
           "experiments": {"library", "reproduce", "experiments"}}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    layer = _layer(path)
    assert _imported_layers(path) <= ALLOWED[layer], f"{layer} module imports {_imported_layers(path)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path):
    source = path.read_text()
    assert source.count("\n") <= 400, "over 400 lines: split it by job"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 80]
    assert not long, f"functions over 80 lines: {long}"


def test_the_layers_detector_sees_a_wrong_import(tmp_path, monkeypatch):
    import test_layout

    fake = tmp_path / "topogen"
    (fake / "reproduce").mkdir(parents=True)
    bad = fake / "reproduce" / "bad.py"
    bad.write_text("from ..experiments.training import TrainConfig\nfrom ..losses import TopologicalLoss\n")
    monkeypatch.setattr(test_layout, "PACKAGE", fake)
    assert _layer(bad) == "reproduce" and _imported_layers(bad) == {"experiments", "library"}
