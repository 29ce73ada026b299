"""Set-up: one source of dependencies, the two commands, the torch cap."""

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_delegates_to_pyproject_with_the_same_extras():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = [d for d in deps if isinstance(d, dict)][0]["pip"]
    # conda provides only Python and pip; everything else comes from pyproject.toml
    assert sorted(re.split(r"[=<>]", d)[0] for d in conda) == ["pip", "python"]
    python = next(d for d in conda if d.startswith("python"))
    spec = pyproject()["project"]["requires-python"]
    assert Version(python.split("=")[-1] + ".0") >= Version(spec.lstrip(">="))
    make_extras = re.search(r"-e '\.\[([\w,]+)\]'", (ROOT / "Makefile").read_text()).group(1)
    assert pip == [f"-e .[{make_extras}]"]
    assert set(make_extras.split(",")) <= set(pyproject()["project"]["optional-dependencies"])


def test_requirements_admit_the_local_torch_wheels():
    reqs = [Requirement(r) for r in pyproject()["project"]["dependencies"]]
    by_name = {r.name.lower(): r for r in reqs}
    assert by_name["torch"].specifier.contains("2.14.1")
    assert by_name["torchvision"].specifier.contains("0.29.1")
    for r in reqs:  # lower bounds only: nothing pins above what is installed
        assert all(s.operator == ">=" for s in r.specifier), r


def test_core_packages_are_declared():
    project = pyproject()["project"]
    names = {Requirement(r).name.lower() for r in project["dependencies"]}
    names |= {Requirement(r).name.lower() for extra in project["optional-dependencies"].values() for r in extra}
    for pkg in ["torch", "torchvision", "gudhi", "giotto-ph", "jupyter", "papermill", "matplotlib", "seaborn",
                "scikit-learn", "mlxtend", "pot"]:
        assert pkg in names, pkg


def test_distribution_name_is_free_and_import_name_is_topogen():
    """"topogen" on PyPI is an unrelated project: this one installs as topogen-companion, imports as topogen."""
    from importlib.metadata import distribution, packages_distributions

    assert pyproject()["project"]["name"] == "topogen-companion"
    assert "topogen-companion" in packages_distributions().get("topogen", [])
    assert distribution("topogen-companion").metadata["Name"] == "topogen-companion"


def test_make_lab_starts_jupyter_lab_on_the_project_kernel(tmp_path):
    import json
    import subprocess
    import sys

    # the kernel make lab installs is the one every notebook names, and it runs this environment's Python
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(tmp_path), "--name", "python3"],
                   check=True, capture_output=True)
    spec = json.loads((tmp_path / "share" / "jupyter" / "kernels" / "python3" / "kernel.json").read_text())
    assert Path(spec["argv"][0]).resolve() == Path(sys.executable).resolve()
    for nb in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        assert json.loads(nb.read_text())["metadata"]["kernelspec"]["name"] == "python3"
