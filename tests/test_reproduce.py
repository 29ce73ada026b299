"""The papermill runner, on the tiny notebooks under tests/notebooks."""

import json
import os
import shutil
from pathlib import Path

import pytest

from topogen import reproduce

HERE = Path(__file__).parent / "notebooks"


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    shutil.copytree(HERE, nbs)
    figs = tmp_path / "figures"
    figs.mkdir()
    return nbs, figs


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


def test_full_run_in_place_and_deterministic(project, capsys):
    nbs, figs = project
    (figs / "01_stale_old.png").write_bytes(b"old")  # no longer written by 01: removed
    (figs / "notes.txt").write_text("kept")  # not a numbered figure: kept
    args = ["--notebooks-dir", str(nbs), "--figures-dir", str(figs)]
    assert reproduce.main(args) == 0
    out = capsys.readouterr().out
    assert "01_tiny_line.png" in out and "02_tiny_bars.png" in out
    assert sorted(p.name for p in figs.iterdir()) == ["01_tiny_line.png", "02_tiny_bars.png", "notes.txt"]
    nb = _stale_free(nbs / "01_tiny.ipynb")
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("01_tiny_line.png" in "".join(o.get("text", "")) for o in outputs)
    first = {p.name: p.read_bytes() for p in [*figs.iterdir(), *nbs.glob("*.ipynb")]}
    assert reproduce.main(args) == 0
    second = {p.name: p.read_bytes() for p in [*figs.iterdir(), *nbs.glob("*.ipynb")]}
    assert first == second  # a rerun does not churn notebooks or figures
    assert not list(nbs.parent.glob(".reproduce-*"))  # staging cleaned up


def test_failure_names_notebook_and_cell_and_keeps_figures(project, capsys):
    nbs, figs = project
    committed = {"01_tiny_line.png": b"committed-1", "02_tiny_bars.png": b"committed-2"}
    for name, data in committed.items():
        (figs / name).write_bytes(data)
    before_nb = (nbs / "01_tiny.ipynb").read_bytes()
    second = nbs / "02_tiny_second.ipynb"
    second.write_text(second.read_text().replace("fail = False", "fail = True"))
    code = reproduce.main(["--notebooks-dir", str(nbs), "--figures-dir", str(figs)])
    err = capsys.readouterr().err
    assert code == 1
    assert "02_tiny_second.ipynb failed in cell 3" in err and "asked to fail" in err
    assert {p.name: p.read_bytes() for p in figs.iterdir()} == committed
    assert (nbs / "01_tiny.ipynb").read_bytes() == before_nb
    assert not list(nbs.parent.glob(".reproduce-*"))


def test_invalid_parameter_stops_in_validation_cell(project, tmp_path, capsys):
    nbs, figs = project
    params = tmp_path / "smoke.yml"
    params.write_text("01_tiny:\n  slope: steep\n")
    code = reproduce.main(["01", "--smoke", "--notebooks-dir", str(nbs), "--smoke-parameters", str(params),
                           "--output-dir", str(tmp_path / "out")])
    assert code == 1
    assert "slope must be a number" in capsys.readouterr().err


def test_smoke_run_writes_to_a_temporary_folder(project, tmp_path):
    nbs, figs = project
    out = tmp_path / "smoke-out"
    before = (nbs / "01_tiny.ipynb").read_bytes()
    results = reproduce.run(["01"], smoke=True, notebooks_dir=nbs, figures_dir=figs, output_dir=out)
    assert [r.figures for r in results] == [["01_tiny_line.png"]]
    assert (out / "figures" / "01_tiny" / "01_tiny_line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    executed = json.loads((out / "notebooks" / "01_tiny.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "slope = 3.0" in "".join(injected[0]["source"])
    assert list(figs.iterdir()) == [] and (nbs / "01_tiny.ipynb").read_bytes() == before


def test_named_parameter_set_runs_into_its_own_folder(project, capsys):
    nbs, figs = project
    (nbs / "demo_parameters.yml").write_text("01_tiny:\n  slope: 5.0\n")
    (figs / "01_tiny_line.png").write_bytes(b"committed")
    args = ["--notebooks-dir", str(nbs), "--figures-dir", str(figs), "--parameters", "demo", "-p", "fail", "false"]
    assert reproduce.main(args) == 0
    assert (figs / "01_tiny_line.png").read_bytes() == b"committed"  # never over the committed figures
    out = figs / "demo"
    assert sorted(p.name for p in out.iterdir()) == ["01_tiny.ipynb", "01_tiny_line.png"]  # only the listed notebook
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


def _set_after(nb_path, after):
    nb = json.loads(nb_path.read_text())
    nb["metadata"]["topogen"] = {"after": after}
    nb_path.write_text(json.dumps(nb))


def test_prerequisites_come_from_the_notebook_metadata(project):
    nbs, _ = project
    second = nbs / "02_tiny_second.ipynb"
    assert reproduce.prerequisites(second) == []
    _set_after(second, ["01"])
    assert reproduce.prerequisites(second) == ["01"]
    for bad in (["02"], ["03"], "01", [1], ["1"]):  # itself, a later notebook, not a list of numbers
        _set_after(second, bad)
        with pytest.raises(ValueError, match="topogen.after"):
            reproduce.prerequisites(second)
    # the real notebooks: 04 reuses the runs 03 caches
    real = {p.name[:2]: reproduce.prerequisites(p) for p in reproduce.find_notebooks(HERE.parents[1] / "notebooks")}
    assert real["04"] == ["03"] and real["01"] == [] and real["03"] == []


def test_side_by_side_in_order_after_prerequisites(project):
    nbs, figs = project
    lines = []
    reproduce.run(notebooks_dir=nbs, figures_dir=figs, jobs=2, log=lines.append)
    started = [i for i, line in enumerate(lines) if line.startswith("running ")]
    assert [lines[i] for i in started] == ["running 01_tiny.ipynb", "running 02_tiny_second.ipynb"]
    assert "local Dask cluster" in lines[0] and started == [1, 2]  # both started before either finished
    side_by_side = {p.name: p.read_bytes() for p in figs.iterdir()}
    _set_after(nbs / "02_tiny_second.ipynb", ["01"])
    lines.clear()
    reproduce.run(notebooks_dir=nbs, figures_dir=figs, jobs=2, log=lines.append)
    first_done = next(i for i, line in enumerate(lines) if line.startswith("  01_tiny.ipynb: "))
    assert lines.index("running 02_tiny_second.ipynb") > first_done  # waited for its prerequisite
    lines.clear()
    reproduce.run(notebooks_dir=nbs, figures_dir=figs, jobs=1, log=lines.append)
    assert {p.name: p.read_bytes() for p in figs.iterdir()} == side_by_side  # the same figures one at a time
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        reproduce.run(notebooks_dir=nbs, figures_dir=figs, jobs=0)
    assert reproduce.main(["--notebooks-dir", str(nbs), "--figures-dir", str(figs), "--jobs", "0"]) == 2


def test_side_by_side_notebooks_share_one_dask_cluster(project, tmp_path, monkeypatch):
    """Notebooks run side by side send their sweeps to the runner's local cluster; their cells stay as written."""
    pytest.importorskip("distributed")
    nbs, figs = project
    second = nbs / "02_tiny_second.ipynb"
    nb = json.loads(second.read_text())
    nb["cells"].append({"cell_type": "code", "id": "dask-probe", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": (
        "import os\n"
        "from topogen.sweep import run_sweep\n"
        "from topogen.synthetic import relative_cost\n"
        "where = run_sweep(relative_cost, [dict(name='circle', steps_fraction=0.5)], cache=False)\n"
        "scheduler = os.environ.get('TOPOGEN_DASK_SCHEDULER', '')\n"
        "print('scheduler:', scheduler or 'none', 'cost:', where[0])\n"
        "print('priority:', os.environ.get('TOPOGEN_DASK_PRIORITY', 'none'))\n"
        "if scheduler:\n"
        "    from distributed import Client\n"
        "    with Client(scheduler) as client:\n"
        "        trim = set(client.run(lambda: os.environ.get('MALLOC_TRIM_THRESHOLD_')).values())\n"
        "        ran = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.task_prefixes))\n"
        "        held = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.WORKER_SATURATION)\n"
        "    print('malloc trim:', trim, 'tasks ran there:', ran > 0, 'units held per worker thread:', held)\n")})
    second.write_text(json.dumps(nb))
    out = tmp_path / "out"
    # as an earlier Dask nanny in this process leaves it (pytest runs other clusters first)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    reproduce.run(notebooks_dir=nbs, figures_dir=figs, jobs=2)  # a full run: executed notebooks written in place
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # the runner's own environment is left as it was
    text = second.read_text()
    assert "scheduler: tcp://127.0.0.1:" in text and "tasks ran there: True" in text
    assert "priority: -2" in text  # notebook 02's units wait behind notebook 01's
    assert "TOPOGEN_DASK_PRIORITY" not in os.environ and "TOPOGEN_DASK_SCHEDULER" not in os.environ
    assert "units held per worker thread: 1.0" in text  # the waiting ones stay on the scheduler, by priority
    assert "malloc trim: {None}" in text  # the nanny's MALLOC_TRIM_THRESHOLD_ (slow torch allocations) is dropped
    from topogen.synthetic import relative_cost

    assert f"cost: {relative_cost('circle', 0.5)}" in text
    for path in (second, nbs / "01_tiny.ipynb"):  # no parameters injected into what readers see
        assert "injected-parameters" not in path.read_text()
    reproduce.run(smoke=True, notebooks_dir=nbs, figures_dir=figs, output_dir=out, jobs=1)
    assert "scheduler: none" in (out / "notebooks" / "02_tiny_second.ipynb").read_text()
    assert "priority: none" in (out / "notebooks" / "02_tiny_second.ipynb").read_text()
    # on an accelerator the notebooks run one at a time, without the cluster
    lines = []
    params = tmp_path / "gpu.yml"
    params.write_text("02_tiny_second:\n  device: cuda\n")
    reproduce.run(smoke=True, notebooks_dir=nbs, figures_dir=figs, output_dir=tmp_path / "gpu", jobs=2,
                  smoke_parameters=params, log=lines.append)
    assert not any("Dask" in line for line in lines)
    first_done = next(i for i, line in enumerate(lines) if line.startswith("  01_tiny.ipynb: "))
    assert lines.index("running 02_tiny_second.ipynb (smoke)") > first_done
    assert "scheduler: none" in (tmp_path / "gpu" / "notebooks" / "02_tiny_second.ipynb").read_text()
    # a scheduler given to every notebook (-p dask_scheduler ...): the runner starts no cluster of its own
    lines.clear()
    reproduce.run(smoke=True, notebooks_dir=nbs, figures_dir=figs, output_dir=tmp_path / "given", jobs=2,
                  overrides={"dask_scheduler": "tcp://127.0.0.1:1"}, log=lines.append)
    assert not any("Dask" in line for line in lines)


def test_notebook_failed_survives_the_trip_between_processes():
    import pickle

    err = reproduce.NotebookFailed(Path("03_x.ipynb"), 4, "ValueError: bad")
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, reproduce.NotebookFailed) and str(back) == str(err) and back.cell == 4
