"""The papermill runner, on the tiny notebooks under tests/notebooks."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from topogen import reproduce
from topogen.reproduce.params import notebook_parameters

HERE = Path(__file__).parent / "notebooks"


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    shutil.copytree(HERE, nbs)
    figs = tmp_path / "figures"
    figs.mkdir()
    return nbs, figs


def test_normalize_merges_stream_outputs_split_by_flush_timing(tmp_path):
    def stream(name, text):
        return {"output_type": "stream", "name": name, "text": text}

    image = {"output_type": "display_data", "data": {"text/plain": ["<img>"]}, "metadata": {}}
    cell = {"cell_type": "code", "metadata": {"papermill": {"duration": 1.0}}, "source": "", "execution_count": 1,
            "outputs": [stream("stdout", ["data: a\n"]), stream("stdout", "classifier: b\nc\n"),
                        stream("stderr", ["warn\n"]), stream("stdout", ["d\n"]), image, stream("stdout", ["e"])]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [cell], "metadata": {"papermill": {"start_time": "x"}}, "nbformat": 4,
                                "nbformat_minor": 5}))
    reproduce.normalize_notebook(path, "nb.ipynb")
    outputs = json.loads(path.read_text())["cells"][0]["outputs"]
    assert outputs == [stream("stdout", ["data: a\n", "classifier: b\n", "c\n"]), stream("stderr", ["warn\n"]),
                       stream("stdout", ["d\n"]), image, stream("stdout", ["e"])]
    once = path.read_text()
    reproduce.normalize_notebook(path, "nb.ipynb")
    assert path.read_text() == once  # idempotent: a committed notebook normalizes to itself


def test_normalize_drops_widget_ids_and_state(tmp_path):
    view = {"model_id": "8f1c0b5e", "version_major": 2, "version_minor": 0}
    widget = {"output_type": "display_data", "metadata": {},
              "data": {"application/vnd.jupyter.widget-view+json": view, "text/plain": ["Playground: ..."]}}
    cell = {"cell_type": "code", "metadata": {}, "source": "pg", "execution_count": 1, "outputs": [widget]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [cell], "metadata": {"widgets": {"state": {"8f1c0b5e": {}}}},
                                "nbformat": 4, "nbformat_minor": 5}))
    reproduce.normalize_notebook(path, "nb.ipynb")
    nb = json.loads(path.read_text())
    assert "widgets" not in nb["metadata"]
    assert nb["cells"][0]["outputs"][0]["data"] == {"text/plain": ["Playground: ..."]}


def test_normalize_names_the_injected_parameters_cell(tmp_path):
    """papermill gives the cell it injects a random id; normalized, two runs with parameters write the same bytes."""
    texts = []
    for random_id in ("6e1bdd8d", "2548b642"):
        cells = [{"cell_type": "code", "id": "c1", "metadata": {"tags": ["parameters"]}, "source": "n = 1",
                  "execution_count": 1, "outputs": []},
                 {"cell_type": "code", "id": random_id, "metadata": {"tags": ["injected-parameters"]},
                  "source": "n = 2", "execution_count": 2, "outputs": []}]
        path = tmp_path / f"{random_id}.ipynb"
        path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        reproduce.normalize_notebook(path, "nb.ipynb")
        texts.append(path.read_text())
    assert texts[0] == texts[1]
    assert [c["id"] for c in json.loads(texts[0])["cells"]] == ["c1", "injected-parameters"]


def test_find_notebooks_sorted_and_selected(project):
    nbs, _ = project
    (nbs / "scratch.ipynb").write_text("{}")  # not numbered: ignored
    assert [p.name for p in reproduce.find_notebooks(nbs)] == ["01_tiny.ipynb", "02_tiny_second.ipynb"]
    assert [p.name for p in reproduce.find_notebooks(nbs, ["02"])] == ["02_tiny_second.ipynb"]
    assert [p.name for p in reproduce.find_notebooks(nbs, ["01_tiny", "02_tiny_second.ipynb"])] == [
        "01_tiny.ipynb",
        "02_tiny_second.ipynb",
    ]
    with pytest.raises(ValueError, match="no notebook matches '07'"):
        reproduce.find_notebooks(nbs, ["07"])


def test_zero_notebooks_is_fine(tmp_path, capsys):
    (tmp_path / "nb").mkdir()
    assert reproduce.main(["--notebooks-dir", str(tmp_path / "nb"), "--figures-dir", str(tmp_path / "f")]) == 0
    assert "nothing to do" in capsys.readouterr().out


def _stale_free(nb_path):
    nb = json.loads(nb_path.read_text())
    text = json.dumps(nb)
    for key in ("start_time", "end_time", "duration", "iopub.execute_input"):
        assert key not in text, key
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    return nb


@pytest.mark.notebooks
def test_full_run_in_place_and_deterministic(project, capsys):
    nbs, figs = project
    (figs / "01_stale_old.png").write_bytes(b"old")  # no longer written by 01: removed
    (figs / "notes.txt").write_text("kept")  # not a numbered figure: kept
    args = ["--notebooks-dir", str(nbs), "--figures-dir", str(figs)]
    assert reproduce.main(args) == 0
    out = capsys.readouterr().out
    assert "01_tiny_line.png" in out and "02_tiny_bars.png" in out
    assert sorted(p.name for p in figs.iterdir()) == ["01_tiny_line.png", "02_tiny_bars.png", "notes.txt"]
    # the results file goes to results/ next to figures/
    assert json.loads((figs.parent / "results" / "01_tiny.json").read_text()) == {"slope": 2.0}
    nb = _stale_free(nbs / "01_tiny.ipynb")
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("01_tiny_line.png" in "".join(o.get("text", "")) for o in outputs)
    outputs_of = lambda: {p.name: p.read_bytes() for p in [*figs.iterdir(), *nbs.glob("*.ipynb"),  # noqa: E731
                                                        *(figs.parent / "results").iterdir()]}
    first = outputs_of()
    assert reproduce.main(args) == 0
    second = outputs_of()
    assert first == second  # a rerun does not churn notebooks or figures
    assert not list(nbs.parent.glob(".reproduce-*"))  # staging cleaned up


@pytest.mark.notebooks
def test_failure_names_notebook_and_cell_and_keeps_figures(project, capsys):
    nbs, figs = project
    committed = {"01_tiny_line.png": b"committed-1", "02_tiny_bars.png": b"committed-2"}
    for name, data in committed.items():
        (figs / name).write_bytes(data)
    (figs.parent / "results").mkdir()
    (figs.parent / "results" / "01_tiny.json").write_text('{"slope": 1.0}\n')
    before_nb = (nbs / "01_tiny.ipynb").read_bytes()
    second = nbs / "02_tiny_second.ipynb"
    second.write_text(second.read_text().replace("fail = False", "fail = True"))
    code = reproduce.main(["--notebooks-dir", str(nbs), "--figures-dir", str(figs)])
    err = capsys.readouterr().err
    assert code == 1
    assert "02_tiny_second.ipynb failed in cell 3" in err and "asked to fail" in err
    assert {p.name: p.read_bytes() for p in figs.iterdir()} == committed
    assert (figs.parent / "results" / "01_tiny.json").read_text() == '{"slope": 1.0}\n'  # untouched too
    assert (nbs / "01_tiny.ipynb").read_bytes() == before_nb
    assert not list(nbs.parent.glob(".reproduce-*"))


@pytest.mark.notebooks
def test_smoke_run_writes_to_a_temporary_folder(project, tmp_path, monkeypatch):
    nbs, figs = project
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as CI sets it: the kernels still show figures inline
    out = tmp_path / "smoke-out"
    before = (nbs / "01_tiny.ipynb").read_bytes()
    results = reproduce.run(["01"], smoke=True, notebooks_dir=nbs, figures_dir=figs, output_dir=out)
    assert [r.figures for r in results] == [["01_tiny_line.png"]]
    assert (out / "figures" / "01_tiny" / "01_tiny_line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    executed = json.loads((out / "notebooks" / "01_tiny.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "slope = 3.0" in "".join(injected[0]["source"])
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the figure was not shown inline"
    assert list(figs.iterdir()) == [] and (nbs / "01_tiny.ipynb").read_bytes() == before


@pytest.mark.notebooks
def test_named_parameter_set_runs_into_its_own_folder(project, capsys):
    nbs, figs = project
    (nbs / "demo_parameters.yml").write_text("01_tiny:\n  slope: 5.0\n")
    (figs / "01_tiny_line.png").write_bytes(b"committed")
    args = ["--notebooks-dir", str(nbs), "--figures-dir", str(figs), "--parameters", "demo", "-p", "fail", "false"]
    assert reproduce.main(args) == 0
    assert (figs / "01_tiny_line.png").read_bytes() == b"committed"  # never over the committed figures
    out = figs / "demo"
    # only the listed notebook's outputs: the executed notebook, its figure and its results file
    assert sorted(p.name for p in out.iterdir()) == ["01_tiny.ipynb", "01_tiny.json", "01_tiny_line.png"]
    text = (out / "01_tiny.ipynb").read_text()
    assert "slope = 5.0" in text and "fail = False" in text
    # an override that makes the notebook fail leaves the earlier outputs as they were
    before = (out / "01_tiny_line.png").read_bytes()
    assert reproduce.main(args[:-2] + ["fail", "true"]) == 1
    assert (out / "01_tiny_line.png").read_bytes() == before
    assert "asked to fail" in capsys.readouterr().err
    assert not list(figs.glob(".reproduce-*"))  # the staging folder is gone


def test_named_parameter_set_errors(project):
    nbs, figs = project
    with pytest.raises(FileNotFoundError):
        reproduce.run(parameters="absent", notebooks_dir=nbs, figures_dir=figs)
    (nbs / "empty_parameters.yml").write_text("99_none: {}\n")
    with pytest.raises(ValueError, match="names no notebook"):
        reproduce.run(parameters="empty", notebooks_dir=nbs, figures_dir=figs)
    with pytest.raises(ValueError, match="exclusive"):
        reproduce.run(parameters="empty", smoke=True, notebooks_dir=nbs, figures_dir=figs)


def test_a_parameter_no_notebook_declares_is_an_error_before_anything_runs(project):
    # papermill would inject a misspelt name and run on, ignoring it
    nbs, figs = project
    (nbs / "typo_parameters.yml").write_text("01_tiny:\n  slop: 5.0\n")
    message = r"typo_parameters.yml: 01_tiny.ipynb has no parameter 'slop' \(its parameters: fail, figures_dir, slope\)"
    with pytest.raises(ValueError, match=message):
        reproduce.run(parameters="typo", notebooks_dir=nbs, figures_dir=figs)
    with pytest.raises(ValueError, match="-p slop: no notebook run has a parameter 'slop'"):
        reproduce.run(["01", "02"], smoke=True, notebooks_dir=nbs, figures_dir=figs, output_dir=figs / "out",
                      overrides={"slop": 1.0})
    assert list(figs.iterdir()) == [] and not list(nbs.parent.glob(".reproduce-*"))
    # an override goes to the notebooks that declare it
    chosen = notebook_parameters(reproduce.find_notebooks(nbs), {"01_tiny": {"slope": 3.0}},
                                 {"slope": 5.0, "fail": False}, "smoke_parameters.yml")
    assert chosen == {"01_tiny": {"slope": 5.0, "fail": False}, "02_tiny_second": {"fail": False}}


SLEEPY = [
    ("markdown", "# A long notebook\nCaches one sweep result, starts two worker processes, then sleeps.", None),
    ("code", 'figures_dir = ""\nsleep = 600.0\nmarker = ""', ["parameters"]),
    ("code", """import json
import os
import time
from pathlib import Path

import psutil
from joblib.externals.loky import get_reusable_executor

from topogen.experiments.ablation import matched_weights
from topogen.reproduce.paths import cache_dir
from topogen.reproduce.sweep import run_sweep

print("cached entries before:", len(list(cache_dir().rglob("output.pkl"))))
run_sweep(matched_weights, [dict(term_values={"a": 2.0}, reference=1.0)])
print("cached entries after:", len(list(cache_dir().rglob("output.pkl"))))
busy = [get_reusable_executor(max_workers=2).submit(time.sleep, sleep) for _ in range(2)]
while len(psutil.Process().children(recursive=True)) < 2:
    time.sleep(0.1)
if marker:
    pids = [os.getpid()] + [p.pid for p in psutil.Process().children(recursive=True)]
    Path(marker).write_text(json.dumps(pids))
time.sleep(sleep)""", None),
]


def _write_notebook(path, cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for kind, source, tags in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, str(path))


ON_A_CLUSTER = [
    ("markdown", "# A sweep on a cluster\nRuns four units through run_sweep, on the cluster that dask_scheduler names.",
     None),
    ("code", 'figures_dir = ""\ndask_scheduler = ""', ["parameters"]),
    ("code", """from topogen.reproduce.sweep import run_sweep


def where(k):
    from distributed import get_worker  # raises outside a Dask worker

    return get_worker().address


for address in sorted(set(run_sweep(where, [{"k": k} for k in range(4)], cache=False, scheduler=dask_scheduler))):
    print("ran on", address)""", None),
]


@pytest.mark.notebooks
@pytest.mark.dask
@pytest.mark.xdist_group("dask_cluster")  # with the other tests on the shared cluster
def test_the_dask_scheduler_parameter_sends_a_notebooks_sweeps_to_that_cluster(project, dask_address):
    """``python -m topogen.reproduce NN -p dask_scheduler tcp://...``: the notebook's units run on that cluster's
    workers (that a study's runs there are the local runs' bits: tests/test_study.py)."""
    import distributed
    import nbformat

    nbs, figs = project
    _write_notebook(nbs / "03_on_a_cluster.ipynb", ON_A_CLUSTER)
    args = ["03", "--notebooks-dir", str(nbs), "--figures-dir", str(figs), "-p", "dask_scheduler", dask_address]
    assert reproduce.main(args) == 0
    with distributed.Client(dask_address) as client:
        workers = set(client.scheduler_info()["workers"])
    text = "".join(o.get("text", "") for c in nbformat.read(nbs / "03_on_a_cluster.ipynb", as_version=4).cells
                   for o in c.get("outputs", []))
    ran_on = {line.split()[-1] for line in text.splitlines() if line.startswith("ran on ")}
    assert ran_on and ran_on <= workers, (text, workers)


@pytest.mark.notebooks
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_ends_what_it_started_and_changes_nothing(project, tmp_path, signum):
    """Ctrl-C or SIGTERM mid-notebook: kernel and workers ended, no staging left, committed files intact, cache kept."""
    import psutil

    nbs, figs = project
    _write_notebook(nbs / "03_sleepy.ipynb", SLEEPY)
    (figs / "03_sleepy_plot.png").write_bytes(b"committed")
    committed = {p: p.read_bytes() for p in [*figs.iterdir(), *nbs.iterdir()]}
    marker = tmp_path / "pids.json"
    env = {**os.environ, "TOPOGEN_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "topogen.reproduce", "03", "--notebooks-dir", str(nbs), "--figures-dir", str(figs)]
    proc = subprocess.Popen([*args, "-p", "marker", str(marker)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):  # the kernel has started its workers and is sleeping (or the run failed early)
            if marker.is_file() or proc.poll() is not None:
                break
            time.sleep(0.25)
        assert marker.is_file(), proc.communicate(timeout=60)
        started = [psutil.Process(pid) for pid in json.loads(marker.read_text())]
        assert len(started) >= 3  # the kernel and its two workers
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)  # a hang guard, not a time budget
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "committed notebooks and figures were left untouched" in err
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "processes left running"
    assert not list(tmp_path.glob(".reproduce-*"))
    assert {p: p.read_bytes() for p in [*figs.iterdir(), *nbs.iterdir()]} == committed
    if signum == signal.SIGTERM:
        return  # what was cached outlives either signal alike: the next run's reuse is checked once, after Ctrl-C
    # the next run finds what the interrupted one cached
    done = subprocess.run([*args, "-p", "sleep", "0"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    text = (nbs / "03_sleepy.ipynb").read_text()
    assert "cached entries before: 1" in text and "cached entries after: 1" in text
