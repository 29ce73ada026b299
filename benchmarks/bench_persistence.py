"""Time vr_persistence + .diagram + backward next to the bare giotto-ph call.

Prints, for N in {64, 128, 256, 512} 784-D MNIST batches, the median time of
the differentiable wrapper (persistence, both diagrams, backward) and of
``ripser_parallel(X, maxdim=1, return_generators=True)`` on the same points,
and their ratio. Target: ratio <= 1.3 at N = 128. ``OPENBLAS_NUM_THREADS`` defaults to 1 here
(see the comment below); set it to compare the contended case.

    .venv/bin/python benchmarks/bench_persistence.py [--repeats 30]
"""

import os
import sys
from pathlib import Path

# The bare call computes its distance matrix with scikit-learn, i.e. numpy's BLAS.
# OpenBLAS worker threads keep spinning after such a call and then compete with
# torch's OpenMP threads in the next (our) call, inflating whichever runs second.
# One BLAS thread removes that cross-library contention; override it to compare.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402
from _common import median_times, mnist_like, parse_args  # noqa: E402
from gph import ripser_parallel  # noqa: E402

from topogen.persistence import vr_persistence  # noqa: E402


def main():
    args = parse_args(__doc__, [64, 128, 256, 512])
    print(f"{'N':>5} {'max_dim':>7} {'topogen fwd+bwd ms':>19} {'bare ripser ms':>15} {'ratio':>6}")
    for n in args.sizes:
        fake, _ = mnist_like(n)
        x_np = fake.numpy().astype(np.float64)
        for max_dim in (0, 1):

            x = fake.clone().requires_grad_(True)

            def ours():
                x.grad = None
                pers = vr_persistence(x, max_dim=max_dim)
                total = sum(d.sum() for d in pers.diagrams().values())
                total.backward()

            def bare():
                ripser_parallel(x_np, maxdim=max_dim, return_generators=True)

            t = median_times({"ours": ours, "bare": bare}, repeats=args.repeats)
            print(f"{n:>5} {max_dim:>7} {t['ours'] * 1e3:>19.2f} {t['bare'] * 1e3:>15.2f} {t['ours'] / t['bare']:>6.2f}")


if __name__ == "__main__":
    main()
