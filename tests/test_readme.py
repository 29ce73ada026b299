"""The README: its Python blocks (and docs/library.md's) run; every image it shows exists and comes from a notebook."""

import math
import re
import subprocess
import sys
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
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


# --- every number of the README's results sections is a results entry -------------------------------------------
# The results sections: the finding at the top, the claims table and "## Results". Each paragraph or table row is
# checked against the results files of the notebooks it names (links to notebooks/NN_..., "notebook NN", the
# subsection's "### NN —"); the finding at the top against all of them.

_NUMBER = re.compile(r"(?<![\w.])([+\-−]?(?:\d{1,3}(?: \d{3})+|\d+)(?:\.\d+)?(?:e[+\-−]?\d+)?)(?![\w.]*\w)")
_NOT_RESULTS = [
    r"`[^`]*`",  # code
    r"\[\d\d\]",  # a notebook's number as a link text
    r"!\[[^\]]*\]\([^)]*\)|<img[^>]*>|\]\([^)]*\)",  # images and link targets
    r"\bdegrees? \d( (and|or|\+) \d)*|\bdegree-\d|\b\d+-(D|NN)\b|\bH\d",  # degrees and dimensions
    r"\d+(\.\d+)? ?% (CI|confidence)",  # the confidence level
    r"\b[A-Za-z_]+\d\w*",  # names with digits (bottleneck0, b1, x10)
    r"^#+ .*$",  # headings
]


def _results_blocks(text: str):
    """(block text, notebook numbers) for every paragraph or table row of the results sections."""
    top, rest = text.split("\n## Claims and evidence", 1)
    claims = rest.split("\n## ", 1)[0]
    results = text.split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    every = {p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    finding = top[top.index("**What we found"):]  # the finding, its animations and its table
    for block in re.split(r"\n\s*\n", finding):
        yield block, every
    for row in claims.splitlines():
        if row.startswith("|"):  # the claims table (the figure map beneath it quotes no result)
            yield row, set(re.findall(r"notebooks/(\d\d)_", row))
    for section in re.split(r"\n(?=### )", results):
        head = re.match(r"### (\d\d) ", section)
        own = {head.group(1)} if head else set()
        for block in re.split(r"\n\s*\n", section):
            named = re.findall(r"notebooks/(\d\d)_", block) + re.findall(r"notebook (\d\d)\b", block)
            yield block, own | set(named)


def _leaves(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _matches(token: str, values) -> bool:
    text = token.replace("−", "-").replace(" ", "")
    number = float(text)
    if "e" in text:
        return any(math.isclose(number, v, rel_tol=1e-9) for v in values)
    decimals = len(text.split(".")[1]) if "." in text else 0
    printed = Decimal(text.lstrip("+-"))
    step = Decimal(1).scaleb(-decimals)
    for v in values:  # a value recorded as printed (0.865) may be quoted rounded half up (0.87)
        for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN):
            ours = abs(Decimal(repr(v))).quantize(step, rounding=mode)
            if ours == printed and (ours == 0 or (v < 0) == (number < 0) or text[0] not in "+-"):
                return True
    return False


def _untraced(readme: str, results: dict) -> list[str]:
    missing = []
    for block, notebooks in _results_blocks(readme):
        cleaned = block
        for pattern in _NOT_RESULTS:
            cleaned = re.sub(pattern, " ", cleaned, flags=re.M)
        values = [v for name, entries in results.items() if name[:2] in notebooks
                  for entry in entries.values() for v in _leaves(entry)]
        for token in _NUMBER.findall(cleaned):
            if not _matches(token, values):
                missing.append(f"{token!r} in: {block.strip()[:100]}")
    return missing


def test_every_readme_result_number_is_a_results_entry():
    """A number in the README's results sections equals an entry of its notebook's results file, as printed."""
    from topogen.reproduce.results import load_results

    results = load_results(ROOT / "results")
    assert results, "no results files under results/"
    missing = _untraced(README, results)
    assert not missing, "README numbers without a results entry:\n" + "\n".join(missing)


def test_the_trace_check_catches_a_drifted_number():
    results = {"03_x": {"a.diff": -0.156, "a.ci": 0.865, "steps": 300, "share": 27.4, "range": [215, 283]}}
    readme = ("# t\n\n**What we found** 300 steps.\n\n## Claims and evidence\n\n| a | b |\n|---|---|\n"
              "| claim | −0.16 ± 0.87 at step 300, [03](notebooks/03_x.ipynb) |\n\n## Results\n\n### 03 — x\n\n"
              "`bottleneck0` in degree 1: gradient on 27% of steps 215–283 (95 % CI), 10-D.\n\n## Library\n")
    assert _untraced(readme, results) == []
    assert _untraced(readme.replace("0.87", "0.88"), results) == ["'0.88' in: | claim | −0.16 ± 0.88 at step "
                                                                  "300, [03](notebooks/03_x.ipynb) |"]
    assert len(_untraced(readme.replace("−0.16", "+0.16"), results)) == 1  # the sign counts
    assert len(_untraced(readme.replace("### 03", "### 04"), results)) == 3  # another notebook's numbers
