"""Run the numbered notebooks with papermill, one after another, and regenerate every figure.

Usage::

    python -m topogen.reproduce                # every notebook, in place (make figures)
    python -m topogen.reproduce 01 03          # a subset, by number or name
    python -m topogen.reproduce --smoke        # small parameters, into a temporary folder
    python -m topogen.reproduce --parameters paper -p device cuda   # the paper's setting, into figures/paper/
    python -m topogen.reproduce -p dask_scheduler tcp://HOST:8786   # every notebook's units on a Dask cluster

A full run executes each notebook, writes the executed notebook back in place
with volatile metadata removed, moves the figures it wrote into ``figures/``
and its results file (:mod:`topogen.reproduce.results`) into ``results/``.
Everything is staged first: if a notebook fails, the run stops
there, names the notebook and the failing cell, exits non-zero, and leaves
every committed notebook and figure untouched.

A smoke run takes its parameters from ``notebooks/smoke_parameters.yml`` and
writes notebooks and figures into a temporary folder (or ``--output-dir``),
never over the committed ones.

A named parameter set (``--parameters NAME`` reads
``notebooks/NAME_parameters.yml``, or give a path) runs the notebooks it lists
(or the ones selected) with its parameters and writes executed notebooks and
figures into their own folder, ``figures/NAME/`` (or ``--output-dir``), again
staged. ``-p KEY VALUE`` overrides one parameter of every notebook run that
declares it (the value is read as YAML: ``-p steps 100``, ``-p device cuda``);
a parameter no notebook run declares is an error, not ignored.

Each notebook runs in a papermill process of its own. Ctrl-C (SIGINT) or
SIGTERM stops the run within seconds: the notebook's process, its kernel and
the kernel's worker processes are ended, the staging folder is removed, and
nothing committed changes; what was cached so far is reused by the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .normalize import KERNEL, normalize_notebook
from .params import notebook_parameters
from .paths import FIGURES_ENV, repo_root
from .progress import BATCH_ENV

__all__ = ["find_notebooks", "run", "main", "NotebookFailed", "Interrupted", "resolve_parameters"]

NOTEBOOK_PATTERN = re.compile(r"^(\d{2})_[\w-]+\.ipynb$")


class NotebookFailed(RuntimeError):
    """A notebook raised; ``notebook`` and ``cell`` say where."""

    def __init__(self, notebook: Path, cell, message: str):
        self.notebook, self.cell, self.message = notebook, cell, message
        where = f"cell {cell}" if cell is not None else "an unknown cell"
        super().__init__(f"{notebook.name} failed in {where}: {message}")


class Interrupted(Exception):
    """The run was stopped by SIGINT or SIGTERM (``signum``); everything it started has been ended."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


@dataclass
class Result:
    notebook: Path
    seconds: float
    figures: list = field(default_factory=list)
    results: list = field(default_factory=list)  # its results file (topogen.reproduce.results), if it wrote one


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


def _load_parameters(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map notebook names to parameter mappings")
    return data


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


# ----------------------------------------------------------------------------
# executing one notebook in a process tree of its own
# ----------------------------------------------------------------------------
def _end_tree(proc: subprocess.Popen) -> None:
    """End ``proc`` and every process it started (papermill, its kernel, the kernel's workers)."""
    import psutil

    try:
        tree = [psutil.Process(proc.pid)]
        tree += tree[0].children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(tree, timeout=5)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    proc.wait()


def _failure(notebook: Path, output: Path, log: Path) -> NotebookFailed:
    """Where an executed notebook failed, read from its output (or the tail of papermill's log)."""
    with contextlib.suppress(OSError, ValueError):
        cells = [c for c in json.loads(output.read_text())["cells"]  # without the markers papermill adds on failure
                 if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
        for index, cell in enumerate(cells):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and not (out.get("ename") == "SystemExit"
                                                              and out.get("evalue") in ("", "0")):
                    count = cell.get("execution_count")
                    where = f"{index} (In [{count}])" if count else index
                    return NotebookFailed(notebook, where, f"{out.get('ename')}: {out.get('evalue')}")
    tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.is_file() else []
    return NotebookFailed(notebook, None, " / ".join(tail) or "papermill exited with an error")


def _execute(notebook: Path, output: Path, figures: Path, parameters: dict) -> None:
    """Execute ``notebook`` into ``output`` (figures into ``figures``) with papermill, in a process of its own.

    Its terminal output (papermill's log, the kernel's warnings) goes to a log
    file beside ``output``, shown only when the notebook fails.
    """
    import yaml

    cmd = [sys.executable, "-m", "papermill", str(notebook), str(output), "-k", KERNEL, "--cwd", str(notebook.parent),
           "--no-progress-bar", "--no-log-output", "--log-level", "WARNING"]
    if parameters:
        params_file = output.with_suffix(".parameters.yml")
        params_file.write_text(yaml.safe_dump(parameters))
        cmd += ["-f", str(params_file)]
    log = output.with_suffix(".log")
    # MPLBACKEND (e.g. Agg in CI) would replace the kernel's inline backend: figures shown in the notebook would be
    # "<Figure size ...>" text instead of images, and the executed notebook would depend on the caller's shell.
    env = {**{k: v for k, v in os.environ.items() if k != "MPLBACKEND"}, FIGURES_ENV: str(figures), BATCH_ENV: "1"}
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # Ctrl-C reaches the runner only; it ends the tree itself
        try:
            code = proc.wait()
        except BaseException:
            _end_tree(proc)
            raise
    if code != 0:
        raise _failure(notebook, output, log)


class _Signals:
    """While active, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread, except inside
    :meth:`deferred` blocks (moving results into place), after which a pending signal raises."""

    def __init__(self):
        self.defer, self.pending = False, None

    def _handler(self, signum, frame):
        if self.defer:
            self.pending = signum
        else:
            raise Interrupted(signum)

    @contextlib.contextmanager
    def active(self):
        import threading

        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield self
            return
        before = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in before.items():
                signal.signal(s, h)

    @contextlib.contextmanager
    def deferred(self):
        self.defer = True
        try:
            yield
        finally:
            self.defer = False
        if self.pending is not None:
            raise Interrupted(self.pending)


def _execute_each(notebooks, stage: Path, parameters: dict, display_path, label: str, log) -> list[Result]:
    """Execute each notebook into ``stage/notebooks`` and its figures into ``stage/figures/<stem>``, normalized."""
    results = []
    for nb in notebooks:
        out_nb, out_fig = stage / "notebooks" / nb.name, stage / "figures" / nb.stem
        out_nb.parent.mkdir(parents=True, exist_ok=True)
        out_fig.mkdir(parents=True, exist_ok=True)
        log(f"running {nb.name}{label}")
        start = time.perf_counter()
        _execute(nb, out_nb, out_fig, parameters.get(nb.stem, {}))
        normalize_notebook(out_nb, display_path(nb))
        written = sorted(p.name for p in out_fig.iterdir() if p.is_file())
        figures = [name for name in written if not name.endswith(".json")]
        results.append(Result(nb, time.perf_counter() - start, figures, [n for n in written if n.endswith(".json")]))
        log(f"  {nb.name}: {results[-1].seconds:.1f} s, {len(figures)} figure(s): {', '.join(figures)}")
    return results


def _commit(stage: Path, results, notebooks_dir: Path, figures_dir: Path, results_dir: Path) -> None:
    """Move staged notebooks, figures and results files into place; drop stale figures of those notebooks."""
    results_dir.mkdir(exist_ok=True)
    for res in results:
        nb = res.notebook
        for old in figures_dir.glob(nb.name[:3] + "*"):
            if old.is_file() and old.name not in res.figures:
                old.unlink()
        for name in res.figures:
            os.replace(stage / "figures" / nb.stem / name, figures_dir / name)
        for name in res.results:
            os.replace(stage / "figures" / nb.stem / name, results_dir / name)
        os.replace(stage / "notebooks" / nb.name, notebooks_dir / nb.name)


def _publish(stage: Path, results, output_dir: Path) -> None:
    """Move a smoke or named run's notebooks, figures and results files into ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for res in results:
        for name in res.figures + res.results:
            os.replace(stage / "figures" / res.notebook.stem / name, output_dir / name)
        os.replace(stage / "notebooks" / res.notebook.name, output_dir / res.notebook.name)


def run(select: list[str] | None = None, *, smoke: bool = False, notebooks_dir: Path | None = None,
        figures_dir: Path | None = None, output_dir: Path | None = None, smoke_parameters: Path | None = None,
        parameters: str | os.PathLike | None = None, overrides: dict | None = None, log=None) -> list[Result]:
    """Execute notebooks one after another; see the module docstring. Returns one Result per notebook.

    A smoke run leaves its outputs in ``output_dir/notebooks`` and
    ``output_dir/figures/<stem>``; a named run in ``output_dir`` itself.

    Raises
    ------
    NotebookFailed
        At the first failing notebook; nothing committed has been changed.
    Interrupted
        SIGINT or SIGTERM; the notebook's processes are ended, nothing committed has been changed.
    ValueError
        ``smoke`` together with ``parameters``, an unknown notebook, a parameter set that names
        no notebook, or a parameter that its notebook does not declare (before anything runs).
    """
    log = log or (lambda message: print(message, flush=True))
    root = repo_root()
    notebooks_dir = Path(notebooks_dir or root / "notebooks")
    figures_dir = Path(figures_dir or root / "figures")
    results_dir = figures_dir.parent / "results"
    if smoke and parameters is not None:
        raise ValueError("--smoke and --parameters are exclusive")
    params, name, source = {}, None, ""
    if parameters is not None:
        name, path = resolve_parameters(parameters, notebooks_dir)
        params, source = _load_parameters(path), path.name
        notebooks = find_notebooks(notebooks_dir, select) if select else [
            p for p in find_notebooks(notebooks_dir) if p.stem in params]
        if not notebooks:
            raise ValueError(f"{path.name} names no notebook of {notebooks_dir}")
        output_dir = Path(output_dir or figures_dir / name)
    else:
        notebooks = find_notebooks(notebooks_dir, select)
        if smoke:
            path = Path(smoke_parameters or notebooks_dir / "smoke_parameters.yml")
            params, source = _load_parameters(path), path.name
            output_dir = Path(output_dir or tempfile.mkdtemp(prefix="topogen-smoke-"))
    if not notebooks:
        log(f"no numbered notebooks in {notebooks_dir}: nothing to do")
        return []
    chosen = notebook_parameters(notebooks, params, overrides or {}, source)
    signals = _Signals()
    if smoke:  # written where it runs, never over committed files
        output_dir.mkdir(parents=True, exist_ok=True)
        with signals.active():
            results = _execute_each(notebooks, output_dir, chosen, lambda nb: nb.name, " (smoke)", log)
        log(f"smoke outputs in {output_dir}")
        return results
    target = output_dir if name else figures_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".reproduce-", dir=target.parent))
    try:
        with signals.active():
            if name:
                results = _execute_each(notebooks, stage, chosen, lambda nb: f"{output_dir.name}/{nb.name}",
                                        f" with the {name!r} parameters", log)
                with signals.deferred():
                    _publish(stage, results, output_dir)
                log(f"{name} outputs in {output_dir}")
            else:
                rel = lambda nb: os.path.relpath(nb, root) if nb.is_relative_to(root) else nb.name  # noqa: E731
                results = _execute_each(notebooks, stage, chosen, rel, "", log)
                with signals.deferred():  # all notebooks and figures move, or none
                    _commit(stage, results, notebooks_dir, figures_dir, results_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (0 done, 1 a notebook failed, 2 bad arguments, 128 + signal)."""
    parser = argparse.ArgumentParser(prog="python -m topogen.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="subset by number (01) or name; default: all")
    parser.add_argument("--smoke", action="store_true", help="small parameters, outputs to a temporary folder")
    parser.add_argument("--output-dir", type=Path, help="where a smoke or named run writes")
    parser.add_argument("--notebooks-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--figures-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--smoke-parameters", type=Path, help="YAML of smoke parameters per notebook")
    parser.add_argument("--parameters", metavar="NAME",
                        help="a parameter set: notebooks/NAME_parameters.yml (e.g. paper) or a YAML path; "
                             "outputs go to figures/NAME/")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"), default=[],
                        help="override a parameter of every notebook run that has it (value read as YAML), "
                             "e.g. -p dask_scheduler tcp://HOST:8786")
    args = parser.parse_args(argv)
    if args.output_dir and not (args.smoke or args.parameters):
        parser.error("--output-dir only applies to --smoke and --parameters runs")
    import yaml

    overrides = {key: yaml.safe_load(value) for key, value in args.parameter}
    try:
        run(args.notebooks, smoke=args.smoke, notebooks_dir=args.notebooks_dir, figures_dir=args.figures_dir,
            output_dir=args.output_dir, smoke_parameters=args.smoke_parameters, parameters=args.parameters,
            overrides=overrides)
    except NotebookFailed as err:
        print(f"FAILED: {err}", file=sys.stderr)
        print("committed notebooks and figures were left untouched", file=sys.stderr)
        return 1
    except Interrupted as err:
        print(f"{err}: the notebook's processes were ended; committed notebooks and figures were left untouched",
              file=sys.stderr)
        return 128 + err.signum
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
