"""Time vr_persistence + .diagram + backward next to the bare giotto-ph call.

Prints, for N in {64, 128, 256, 512} 784-D MNIST batches, the median time of
the differentiable wrapper (persistence, both diagrams, backward) and of
``ripser_parallel(X, maxdim=1, return_generators=True)`` on the same points,
and their ratio. Target: ratio <= 1.3 at N = 128. ``OPENBLAS_NUM_THREADS`` defaults to 1 here
(see the comment below); set it to compare the contended case.

Then degree 2 (voids, ``maxdim=2``): 3-D points (a noisy sphere) for N in
{64, 128, 256} and 784-D digits for N in {64, 128}, same comparison. Target:
ratio <= 1.3 at N = 128 (3-D). ``--no-degree2`` skips it.

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
    args = parse_args(__doc__, [64, 128, 256, 512], flags={"--no-degree2": "skip the degree-2 comparison"})
    print(f"{'N':>5} {'max_dim':>7} {'topogen fwd+bwd ms':>19} {'bare ripser ms':>15} {'ratio':>6}")
    for n in args.sizes:
        fake, _ = mnist_like(n)
        x_np = fake.numpy().astype(np.float64)
        for max_dim in (0, 1):

            x = fake.clone().requires_grad_(True)

            def ours(x=x, max_dim=max_dim):
                x.grad = None
                pers = vr_persistence(x, max_dim=max_dim)
                total = sum(d.sum() for d in pers.diagrams().values())
                total.backward()

            def bare(x_np=x_np, max_dim=max_dim):
                ripser_parallel(x_np, maxdim=max_dim, return_generators=True)

            t = median_times({"ours": ours, "bare": bare}, repeats=args.repeats)
            print(f"{n:>5} {max_dim:>7} {t['ours'] * 1e3:>19.2f} {t['bare'] * 1e3:>15.2f} "
                  f"{t['ours'] / t['bare']:>6.2f}")
    if not args.no_degree2:
        degree2(args)


def degree2(args):
    import torch

    print(f"\n{'cloud':>6} {'N':>5} {'topogen fwd+bwd ms':>19} {'bare ripser ms':>15} {'ratio':>6}  (max_dim = 2)")
    rng = np.random.default_rng(0)
    cases = []
    for n in (64, 128, 256):  # by size: the N = 256 calls allocate much more and would skew what follows them
        pts = rng.normal(size=(n, 3))
        cases.append(("3-D", n, pts / np.linalg.norm(pts, axis=1, keepdims=True) + 0.05 * rng.normal(size=(n, 3))))
        if n < 256:
            cases.append(("784-D", n, mnist_like(n)[1].numpy().astype(np.float64)))
    for label, n, x_np in cases:
        x = torch.tensor(x_np, requires_grad=True)
        repeats = max(3, args.repeats // (10 if n >= 256 else 3 if n >= 128 else 1))

        def ours(x=x):
            x.grad = None
            pers = vr_persistence(x, max_dim=2)
            sum(d.sum() for d in pers.diagrams().values()).backward()

        def bare(x_np=x_np):
            ripser_parallel(x_np, maxdim=2, return_generators=True)

        t = median_times({"ours": ours, "bare": bare}, repeats=repeats, warmup=1)
        print(f"{label:>6} {n:>5} {t['ours'] * 1e3:>19.2f} {t['bare'] * 1e3:>15.2f} {t['ours'] / t['bare']:>6.2f}")


if __name__ == "__main__":
    main()
