"""The README: its Python blocks (and docs/library.md's) run; every image it shows exists and comes from a notebook."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README + (ROOT / "docs" / "library.md").read_text(), flags=re.S)


def test_readme_has_a_python_example():
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_blocks_run(index, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(BLOCKS[index])
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_images_exist_and_come_from_notebooks():
    images = re.findall(r"(?:!\[[^\]]*\]\(|<img src=\")(figures/[^)\"]+)", README)
    assert images
    notebooks = {p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for image in images:
        path = ROOT / image
        assert path.is_file(), image
        assert path.name[:2] in notebooks, f"{image} is not written by a numbered notebook"
        source = "".join((ROOT / "notebooks").glob(path.name[:2] + "_*.ipynb").__next__().read_text())
        stem = path.stem.split("_", 1)[1]
        assert path.stem in source or stem.split("_")[0] in source, f"{image} not found in its notebook"


def test_every_committed_figure_is_in_the_readme():
    """Each figure a notebook writes is shown in the write-up (with its numbers next to it)."""
    shown = set(re.findall(r"(?:!\[[^\]]*\]\(|<img src=\")figures/([^)\"]+)", README))
    committed = {p.name for p in (ROOT / "figures").iterdir() if p.is_file() and not p.name.startswith(".")}
    assert committed <= shown, f"not in the README: {sorted(committed - shown)}"
