"""Run the numbered notebooks with papermill and regenerate every figure.

Usage::

    python -m topogen.reproduce                # every notebook, in place (make figures)
    python -m topogen.reproduce 01 03          # a subset, by number or name
    python -m topogen.reproduce --smoke        # small parameters, into a temporary folder
    python -m topogen.reproduce --parameters paper -p device cuda   # the paper's setting, into figures/paper/

A full run executes each notebook, writes the executed notebook back in place
with volatile metadata removed, and moves the figures it wrote into
``figures/``. Everything is staged first: if any notebook fails, the run stops
there, names the notebook and the failing cell, exits non-zero, and leaves
every committed notebook and figure untouched.

A smoke run takes its parameters from ``notebooks/smoke_parameters.yml`` and
writes notebooks and figures into a temporary folder (or ``--output-dir``),
never over the committed ones.

A named parameter set (``--parameters NAME`` reads
``notebooks/NAME_parameters.yml``, or give a path) runs the notebooks it lists
(or the ones selected) with its parameters and writes executed notebooks and
figures into their own folder, ``figures/NAME/`` (or ``--output-dir``), again
staged: a failed run leaves that folder as it was. ``-p KEY VALUE`` overrides
one parameter of every notebook run (the value is read as YAML: ``-p steps 100``,
``-p device cuda``).

Notebooks run side by side (``--jobs``, default 2 on a machine with two or
more cores): at most that many at once, in number order, each started once
the notebooks it builds on (``"after"`` in its ``topogen`` metadata, e.g.
notebook 04 reuses the runs notebook 03 trains and caches) have finished.
Their parallel units then go to one shared pool: a local Dask cluster with a
single-threaded worker per core, whose address the runner gives each kernel
in ``$TOPOGEN_DASK_SCHEDULER`` (:func:`topogen.sweep.run_sweep` uses it when
given no scheduler), so no core waits while one notebook plots or finishes
its last unit and another has work. Results do not depend on it
(units run with a fixed thread count wherever they run). ``--jobs 1`` runs
one notebook at a time, each with its own process pool, as papermill alone
would. A ``dask_scheduler`` given with ``-p`` sends the units to that cluster
instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from .paths import BATCH_ENV, FIGURES_ENV, PRIORITY_ENV, SCHEDULER_ENV, repo_root

__all__ = ["find_notebooks", "normalize_notebook", "prerequisites", "default_jobs", "run", "main", "NotebookFailed"]

NOTEBOOK_PATTERN = re.compile(r"^(\d{2})_[\w-]+\.ipynb$")
KERNEL = "python3"


class NotebookFailed(RuntimeError):
    """A notebook raised; ``notebook`` and ``cell`` say where."""

    def __init__(self, notebook: Path, cell, message: str):
        self.notebook, self.cell, self.message = notebook, cell, message
        where = f"cell {cell}" if cell is not None else "an unknown cell"
        super().__init__(f"{notebook.name} failed in {where}: {message}")

    def __reduce__(self):  # raised in a notebook's own process, re-raised in the runner's
        return type(self), (self.notebook, self.cell, self.message)


@dataclass
class Result:
    notebook: Path
    seconds: float
    figures: list = field(default_factory=list)


def _print(message: str) -> None:
    print(message, flush=True)


def find_notebooks(folder: Path, select: list[str] | None = None) -> list[Path]:
    """Numbered notebooks (``NN_name.ipynb``) in ``folder``, sorted; optionally a subset.

    ``select`` entries match a notebook by number (``"01"``), stem or file name.
    An entry matching nothing raises ``ValueError``.
    """
    notebooks = sorted(p for p in Path(folder).glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if not select:
        return notebooks
    chosen = []
    for key in select:
        hits = [p for p in notebooks if key in (p.name, p.stem, NOTEBOOK_PATTERN.match(p.name).group(1))]
        if not hits:
            names = ", ".join(p.name for p in notebooks) or "none"
            raise ValueError(f"no notebook matches {key!r} (numbered notebooks: {names})")
        chosen.extend(p for p in hits if p not in chosen)
    return sorted(chosen)


def _number(notebook: Path) -> str:
    return NOTEBOOK_PATTERN.match(notebook.name).group(1)


def prerequisites(notebook: Path) -> list[str]:
    """Numbers of the notebooks ``notebook`` builds on: ``metadata.topogen.after`` (e.g. ``["03"]``).

    A notebook that reuses what another one computes and caches (notebook 04
    the runs of notebook 03) names it there, so that run side by side it
    starts after that one has finished instead of computing the same runs
    at the same time. Run alone, it computes what it needs itself.

    Raises
    ------
    ValueError
        An entry that is not the number of an earlier notebook.
    """
    after = json.loads(Path(notebook).read_text()).get("metadata", {}).get("topogen", {}).get("after", [])
    number = _number(Path(notebook))
    if not isinstance(after, list) or not all(isinstance(a, str) and re.fullmatch(r"\d{2}", a) and a < number
                                              for a in after):
        raise ValueError(f"{Path(notebook).name}: metadata topogen.after must list numbers of earlier notebooks "
                         f"(e.g. [\"03\"]), got {after!r}")
    return after


def default_jobs() -> int:
    """Notebooks run at once by default: 2 on a machine with two or more cores, else 1."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def normalize_notebook(path: Path, display_path: str) -> None:
    """Remove volatile metadata (timestamps, durations, temporary paths) in place."""
    nb = json.loads(Path(path).read_text())
    meta = nb.get("metadata", {})
    pm = meta.get("papermill")
    if isinstance(pm, dict):
        for key in ("start_time", "end_time", "duration", "exception", "environment_variables", "version"):
            pm.pop(key, None)
        pm["input_path"] = pm["output_path"] = display_path
    meta.get("kernelspec", {}).update({"name": KERNEL})
    for cell in nb.get("cells", []):
        cmeta = cell.get("metadata", {})
        cmeta.pop("papermill", None)
        cmeta.pop("execution", None)
        for out in cell.get("outputs", []):
            out.get("metadata", {}).pop("execution", None)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def _load_parameters(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map notebook names to parameter mappings")
    return data


def _execute(notebook: Path, output: Path, figures: Path, parameters: dict, scheduler: str = "") -> None:
    import papermill as pm

    # The kernel inherits these: where figures go (savefig honours it), a batch run (no live progress output) and,
    # for notebooks run side by side (each in a process of its own), the shared cluster and this notebook's priority
    # there (earlier notebooks' units first).
    env = {FIGURES_ENV: str(figures), BATCH_ENV: "1"}
    if scheduler:
        env.update({SCHEDULER_ENV: scheduler, PRIORITY_ENV: str(-int(notebook.name[:2]))})
    env_before = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        pm.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters or None,
            kernel_name=KERNEL,
            progress_bar=False,
            log_output=False,
            cwd=str(notebook.parent),
        )
    except pm.PapermillExecutionError as err:
        where = f"{err.cell_index} (In [{err.exec_count}])" if err.exec_count else err.cell_index
        raise NotebookFailed(notebook, where, f"{err.ename}: {err.evalue}") from None
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _execute_one(notebook: Path, output: Path, figures: Path, parameters: dict, display_path: str,
                 scheduler: str = "") -> float:
    """Execute and normalize one notebook (in the runner's process or one of its own); the seconds it took."""
    start = time.perf_counter()
    _execute(notebook, output, figures, parameters, scheduler)
    normalize_notebook(output, display_path)
    return time.perf_counter() - start


def _execute_each(notebooks, stage: Path, parameters: dict, display_path, label: str, log,
                  list_figures: bool = False, jobs: int = 1, scheduler: str = "") -> list[Result]:
    """Execute each notebook into ``stage/notebooks`` and its figures into ``stage/figures/<stem>``, normalized.

    ``parameters`` maps a notebook's stem to its parameters; ``display_path(nb)``
    is the path the normalized notebook records. With ``jobs`` > 1 up to
    ``jobs`` notebooks run at once, each in a process of its own (its own
    environment: figures folder, batch flag), in number order, a notebook
    only after its :func:`prerequisites`, its sweeps on the Dask cluster at
    ``scheduler`` (``$TOPOGEN_DASK_SCHEDULER`` in its kernel). The first failure
    (:class:`NotebookFailed`) stops starting notebooks; it is raised once the
    running ones have finished, leaving the stage to the caller.
    """
    results = {}

    def prepare(nb: Path) -> tuple:
        out_nb, out_fig = stage / "notebooks" / nb.name, stage / "figures" / nb.stem
        out_nb.parent.mkdir(parents=True, exist_ok=True)
        out_fig.mkdir(parents=True, exist_ok=True)
        log(f"running {nb.name}{label}")
        return nb, out_nb, out_fig, parameters.get(nb.stem, {}), display_path(nb), scheduler

    def finish(nb: Path, seconds: float) -> None:
        written = sorted(p.name for p in (stage / "figures" / nb.stem).iterdir() if p.is_file())
        results[nb] = Result(nb, seconds, written)
        log(f"  {nb.name}: {seconds:.1f} s, {len(written)} figure(s)")
        if list_figures:
            for fig in written:
                log(f"    {fig}")

    if jobs == 1 or len(notebooks) == 1:
        for nb in notebooks:
            finish(nb, _execute_one(*prepare(nb)))
        return [results[nb] for nb in notebooks]
    selected = {_number(nb) for nb in notebooks}
    after = {nb: [a for a in prerequisites(nb) if a in selected] for nb in notebooks}
    waiting, running, failure = list(notebooks), {}, None
    # spawn, not fork: the runner holds the threads of a Dask cluster
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while True:
            finished = {_number(nb) for nb in results}
            for nb in list(waiting):
                if failure is None and len(running) < jobs and all(a in finished for a in after[nb]):
                    waiting.remove(nb)
                    running[pool.submit(_execute_one, *prepare(nb))] = nb
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                nb = running.pop(future)
                try:
                    finish(nb, future.result())
                except BaseException as err:  # noqa: BLE001  (raised below, once the others have finished)
                    failure = failure or err
    if failure is not None:
        raise failure
    return [results[nb] for nb in notebooks]


@contextlib.contextmanager
def _shared_pool(notebooks, parameters: dict, jobs: int, log):
    """``(scheduler, jobs)`` for running ``notebooks`` side by side on one local Dask cluster.

    With ``jobs`` > 1 and several notebooks, a cluster of one single-threaded
    worker process per core runs while the block runs, and ``scheduler`` is
    its address: the runner puts it in ``$TOPOGEN_DASK_SCHEDULER`` for each
    notebook's kernel, where every sweep that names no scheduler of its own
    uses it (the notebooks' parameters and executed cells stay as they are).
    A ``dask_scheduler`` given to every notebook, a ``device`` other than
    ``"cpu"`` (the notebooks then run one at a time) or a missing
    ``distributed`` package means no cluster (empty ``scheduler``).
    """
    if any(str(p.get("device", "cpu")) != "cpu" for p in parameters.values()):
        jobs = 1  # one process drives the accelerator
    given = all(p.get("dask_scheduler") for p in parameters.values())
    if jobs == 1 or len(notebooks) < 2 or given:
        yield "", jobs
        return
    try:
        import distributed
    except ImportError:
        log("the distributed package is missing: each notebook runs its units in its own process pool")
        yield "", jobs
        return
    import dask

    workers = os.cpu_count() or 1
    settings = {
        # Dask's statistical profiler and monitors cost about a tenth of a core here even while idle; a runner has
        # no dashboard to feed, so they are off or slowed.
        "distributed.worker.profile.enabled": False, "distributed.admin.system-monitor.interval": "5s",
        "distributed.admin.tick.interval": "1s", "distributed.worker.memory.monitor-interval": "1s",
        # The nanny's default environment also sets MALLOC_TRIM_THRESHOLD_, which turns off glibc's adaptive mmap
        # threshold: every large torch buffer is then mapped and zeroed anew, and a training unit spent 6 times
        # more time in the kernel and ran 1.7 times slower than in a joblib worker. One thread per worker is kept.
        "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
        # A worker holds only the unit it runs; waiting units stay on the scheduler, which hands out the one of
        # highest priority (the earliest notebook's, see PRIORITY_ENV) instead of a later notebook's unit parked on
        # the worker beforehand (the default lets each worker hold a second unit).
        "distributed.scheduler.worker-saturation": 1.0,
    }
    # An earlier nanny in this process may have left MALLOC_TRIM_THRESHOLD_ in its environment (it sets its own, see
    # distributed.nanny.pre-spawn-environ), and the workers would inherit it: kept out while the cluster runs.
    inherited = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        with dask.config.set(settings), distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None) as cluster:
            log(f"{jobs} notebooks at a time; their units go to a local Dask cluster of {workers} single-threaded "
                f"workers ({cluster.scheduler_address})")
            yield cluster.scheduler_address, jobs
    finally:
        if inherited is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = inherited


def run(
    select: list[str] | None = None,
    *,
    smoke: bool = False,
    notebooks_dir: Path | None = None,
    figures_dir: Path | None = None,
    output_dir: Path | None = None,
    smoke_parameters: Path | None = None,
    parameters: str | os.PathLike | None = None,
    overrides: dict | None = None,
    log=None,
    jobs: int | None = None,
) -> list[Result]:
    """Execute notebooks; see the module docstring. Returns one Result per notebook.

    ``jobs``: notebooks run at once (default :func:`default_jobs`), sharing a
    local Dask cluster when more than one.

    Raises
    ------
    NotebookFailed
        At the first failing notebook; nothing committed has been changed.
    ValueError
        ``smoke`` together with ``parameters``, or a parameter set that names
        no notebook.
    """
    log = log or _print
    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    root = repo_root()
    notebooks_dir = Path(notebooks_dir or root / "notebooks")
    figures_dir = Path(figures_dir or root / "figures")
    if parameters is not None:
        if smoke:
            raise ValueError("--smoke and --parameters are exclusive")
        return _run_named(select, parameters, overrides or {}, notebooks_dir, figures_dir, output_dir, log, jobs)
    notebooks = find_notebooks(notebooks_dir, select)
    if not notebooks:
        log(f"no numbered notebooks in {notebooks_dir}: nothing to do")
        return []
    params = {}
    if smoke:
        params = _load_parameters(Path(smoke_parameters or notebooks_dir / "smoke_parameters.yml"))
        output_dir = Path(output_dir or tempfile.mkdtemp(prefix="topogen-smoke-"))
        output_dir.mkdir(parents=True, exist_ok=True)
        stage = output_dir
    else:
        figures_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".reproduce-", dir=figures_dir.parent))
    results = []
    try:
        chosen = {nb.stem: {**params.get(nb.stem, {}), **(overrides or {})} for nb in notebooks}
        with _shared_pool(notebooks, chosen, jobs, log) as (scheduler, jobs):
            results = _execute_each(
                notebooks, stage, chosen, lambda nb: os.path.relpath(nb, root) if nb.is_relative_to(root) else nb.name,
                " (smoke)" if smoke else "", log, list_figures=True, jobs=jobs, scheduler=scheduler)
        if not smoke:
            _commit(stage, notebooks, notebooks_dir, figures_dir, results)
        else:
            log(f"smoke outputs in {output_dir}")
    finally:
        if not smoke:
            shutil.rmtree(stage, ignore_errors=True)
    return results


def resolve_parameters(parameters, notebooks_dir: Path) -> tuple[str, Path]:
    """``(name, path)`` of a parameter set given by name (``paper``) or by path."""
    path = Path(parameters)
    if path.suffix in (".yml", ".yaml") or path.is_file():
        name = path.stem.removesuffix("_parameters")
    else:
        name, path = str(parameters), Path(notebooks_dir) / f"{parameters}_parameters.yml"
    if not re.fullmatch(r"[\w-]+", name) or name == "smoke":
        raise ValueError(f"invalid parameter set name {name!r}")
    return name, path


def _run_named(select, parameters, overrides, notebooks_dir, figures_dir, output_dir, log, jobs=1) -> list[Result]:
    name, path = resolve_parameters(parameters, notebooks_dir)
    params = _load_parameters(path)
    listed = [p for p in find_notebooks(notebooks_dir) if p.stem in params]
    notebooks = find_notebooks(notebooks_dir, select) if select else listed
    if not notebooks:
        raise ValueError(f"{path.name} names no notebook of {notebooks_dir}")
    output_dir = Path(output_dir or figures_dir / name)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".reproduce-{name}-", dir=output_dir.parent))
    try:
        chosen = {nb.stem: {**params.get(nb.stem, {}), **overrides} for nb in notebooks}
        with _shared_pool(notebooks, chosen, jobs, log) as (scheduler, jobs):
            results = _execute_each(notebooks, stage, chosen, lambda nb: f"{output_dir.name}/{nb.name}",
                                    f" with the {name!r} parameters", log, jobs=jobs, scheduler=scheduler)
        output_dir.mkdir(parents=True, exist_ok=True)
        for nb, res in zip(notebooks, results, strict=True):
            for fig in res.figures:
                os.replace(stage / "figures" / nb.stem / fig, output_dir / fig)
            os.replace(stage / "notebooks" / nb.name, output_dir / nb.name)
        log(f"{name} outputs in {output_dir}")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return results


def _commit(stage: Path, notebooks, notebooks_dir: Path, figures_dir: Path, results) -> None:
    """Move staged notebooks and figures into place; drop stale figures of those notebooks."""
    for nb, res in zip(notebooks, results, strict=True):
        prefix = NOTEBOOK_PATTERN.match(nb.name).group(1) + "_"
        for name in res.figures:
            os.replace(stage / "figures" / nb.stem / name, figures_dir / name)
        for old in figures_dir.glob(prefix + "*"):
            if old.is_file() and old.name not in res.figures:
                old.unlink()
        os.replace(stage / "notebooks" / nb.name, notebooks_dir / nb.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m topogen.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="subset by number (01) or name; default: all")
    parser.add_argument("--smoke", action="store_true", help="small parameters, outputs to a temporary folder")
    parser.add_argument("--output-dir", type=Path, help="where a smoke run writes (default: a new temp folder)")
    parser.add_argument("--notebooks-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--figures-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--smoke-parameters", type=Path, help="YAML of smoke parameters per notebook")
    parser.add_argument("--parameters", metavar="NAME",
                        help="a parameter set: notebooks/NAME_parameters.yml (e.g. paper) or a YAML path; "
                             "outputs go to figures/NAME/")
    parser.add_argument("--jobs", type=int, default=None,
                        help=f"notebooks run at once, sharing one pool of workers (default: {default_jobs()} here)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                        help="override a parameter of every notebook run (value read as YAML)")
    args = parser.parse_args(argv)
    if args.output_dir and not (args.smoke or args.parameters):
        parser.error("--output-dir only applies to --smoke and --parameters runs")
    import yaml

    overrides = {key: yaml.safe_load(value) for key, value in args.parameter}
    try:
        run(
            args.notebooks,
            smoke=args.smoke,
            notebooks_dir=args.notebooks_dir,
            figures_dir=args.figures_dir,
            output_dir=args.output_dir,
            smoke_parameters=args.smoke_parameters,
            parameters=args.parameters,
            overrides=overrides,
            jobs=args.jobs,
        )
    except NotebookFailed as err:
        print(f"FAILED: {err}", file=sys.stderr)
        print("committed notebooks and figures were left untouched", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
