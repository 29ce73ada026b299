"""Time each notebook's smoke run (and, with --full, its full run) beside this machine's VAE step time.

Machines of the same kind differ up to 4x in speed, so no test asserts a time;
this script prints them instead, next to the median VAE step (B = 128)
measured in the same run, so a reader can scale them to their machine. Every
run writes into a temporary folder, never over the committed notebooks and
figures; the cache is a fresh temporary folder too (``--keep-cache`` uses the
project's ``.cache/``), so the times are those of an empty cache.

    .venv/bin/python benchmarks/bench_notebooks.py [01 03 ...] [--full]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, vae_step_ms  # noqa: E402

from topogen.reproduce import find_notebooks, run  # noqa: E402
from topogen.reproduce.paths import repo_root  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="subset by number or name; default: all")
    parser.add_argument("--full", action="store_true", help="also run each notebook with its full parameters")
    parser.add_argument("--keep-cache", action="store_true", help="use the project's cache instead of an empty one")
    args = parser.parse_args()
    notebooks = find_notebooks(repo_root() / "notebooks", args.notebooks)
    print(f"# {machine()}")
    print(f"# VAE step, B = 128: {vae_step_ms():.1f} ms (median of 30)")
    modes = ["smoke", "full"] if args.full else ["smoke"]
    print(f"{'notebook':<36} " + " ".join(f"{m + ' s':>9}" for m in modes))
    with tempfile.TemporaryDirectory(prefix="topogen-bench-") as scratch:
        empty = Path(scratch) / "no_parameters.yml"
        empty.write_text("{}\n")
        for nb in notebooks:
            row = []
            for mode in modes:
                if not args.keep_cache:
                    os.environ["TOPOGEN_CACHE_DIR"] = tempfile.mkdtemp(dir=scratch, prefix="cache-")
                t0 = time.perf_counter()
                run([nb.stem], smoke=True, output_dir=Path(scratch) / f"{mode}-{nb.stem}", log=lambda _: None,
                    smoke_parameters=None if mode == "smoke" else empty)
                row.append(time.perf_counter() - t0)
            print(f"{nb.stem:<36} " + " ".join(f"{s:>9.1f}" for s in row), flush=True)


if __name__ == "__main__":
    main()
