"""Every numbered notebook: conventions, and a smoke run through the runner."""

import ast
import json
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from topogen import reproduce

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = reproduce.find_notebooks(ROOT / "notebooks")
SMOKE = yaml.safe_load((ROOT / "notebooks" / "smoke_parameters.yml").read_text()) or {}
#: Smoke-run time budgets (s) stated by the issues, per notebook number.
BUDGET = {"01": 60, "02": 90, "03": 90, "04": 90}


def test_there_are_notebooks():
    assert NOTEBOOKS, "no numbered notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_conventions(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    params = ast.parse("".join(cells[tagged[0]]["source"]))
    names = []
    for node in params.body:  # literals only: papermill overrides, never recomputes
        assert isinstance(node, ast.Assign), ast.dump(node)
        ast.literal_eval(node.value)
        names.append(node.targets[0].id)
    assert "figures_dir" in names and "seed" in names
    assert "check_" in "".join(cells[tagged[0] + 1]["source"]), "the cell after the parameters validates them"
    assert path.stem in SMOKE, "every notebook has smoke parameters"
    assert set(SMOKE[path.stem]) <= set(names), "smoke parameters override existing parameters"
    # committed with outputs of a full run, without volatile metadata or injected parameters
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "committed with the outputs of a full run"
    assert not any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in cells)
    text = path.read_text()
    for key in ('"start_time"', '"end_time"', '"duration"'):
        assert key not in text


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Each notebook's smoke run, once: {stem: (output folder, figures, seconds)}."""
    out = {}
    for path in NOTEBOOKS:
        folder = tmp_path_factory.mktemp(path.stem)
        start = time.perf_counter()
        results = reproduce.run([path.stem], smoke=True, output_dir=folder)
        out[path.stem] = (folder, results[0].figures, time.perf_counter() - start)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_smoke_run(path, smoke):
    tmp_path, figures, seconds = smoke[path.stem]
    assert figures, "the notebook wrote no figure"
    prefix = path.stem[:3]
    for name in figures:
        assert name.startswith(prefix), name
        img = Image.open(tmp_path / "figures" / path.stem / name)
        img.verify()
        assert img.format in {"PNG", "GIF"}
    committed = {p.name for p in (ROOT / "figures").glob(prefix + "*")}
    assert set(figures) == committed, "the smoke run writes exactly the committed figures"
    assert seconds <= BUDGET[path.stem[:2]], f"smoke run took {seconds:.0f} s"


def test_invalid_parameter_stops_in_the_validation_cell(tmp_path):
    path = NOTEBOOKS[0]
    params = tmp_path / "bad.yml"
    params.write_text(yaml.safe_dump({path.stem: {**SMOKE[path.stem], "seed": -3}}))
    with pytest.raises(reproduce.NotebookFailed) as err:
        reproduce.run([path.stem], smoke=True, output_dir=tmp_path / "out", smoke_parameters=params)
    assert "parameter seed must be >= 0" in str(err.value)
    # cell 0: title, 1: parameters, 2: injected parameters, 3: validation
    assert "cell 3" in str(err.value)


@pytest.mark.parametrize("number", ["01", "03"])
def test_rerun_gives_identical_figures(number, smoke, tmp_path):
    """Two runs on the same machine write byte-identical figures (PNG and GIF)."""
    path = next(p for p in NOTEBOOKS if p.name.startswith(number))
    first_dir, figures, _ = smoke[path.stem]
    reproduce.run([path.stem], smoke=True, output_dir=tmp_path)
    for name in figures:
        a = (first_dir / "figures" / path.stem / name).read_bytes()
        b = (tmp_path / "figures" / path.stem / name).read_bytes()
        assert a == b, f"{name} differs between two runs"


def test_no_orphan_figures():
    """Every committed figure belongs to a numbered notebook that names it."""
    prefixes = {p.name[:3]: p for p in NOTEBOOKS}
    for fig in (ROOT / "figures").iterdir():
        if fig.name.startswith("."):
            continue
        assert fig.name[:3] in prefixes, f"{fig.name} has no notebook"
        base = fig.stem.split("_", 1)[1]
        text = prefixes[fig.name[:3]].read_text()
        assert fig.stem in text or base.split("_")[0] in text, f"{fig.name} is not written by its notebook"
