"""Time every regularizer (forward + backward) next to the persistence computation alone.

For N in {64, 128, 256} 784-D MNIST batches (a noisy "generated" batch against
a real one, the real batch's persistence precomputed once as in training),
prints the median time of:

* persistence alone: ``vr_persistence(x, max_dim)`` + diagrams + backward of their sum,
  for the degree the term needs;
* each term: persistence of the generated batch + the term, forward and backward;
* all seven paper terms together through ``TopologicalLoss([1] * 7)``,

and the ratio / difference to the persistence time. Targets at N = 128: all seven
<= 3x the persistence time; any single term <= 2 ms beyond it.

Then the signature loss (Moor et al.) as TopoVAE-Sig uses it: a 10-D latent
batch against its 784-D input batch, forward + backward including the
persistence of both clouds, next to the persistence of the two clouds alone
(degree 0, as the loss uses). Target at N = 128: <= 1.2x.

    .venv/bin/python benchmarks/bench_losses.py [--repeats 30] [--threads 1]
"""

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import median_times, mnist_like, parse_args  # noqa: E402

from topogen.losses import TopologicalLoss  # noqa: E402
from topogen.persistence import vr_persistence  # noqa: E402
from topogen.signature import loss_signature  # noqa: E402
from topogen.terms import ALL_TERMS, PAPER_TERMS, TERM_DEGREE  # noqa: E402


def main():
    args = parse_args(__doc__, [64, 128, 256])
    print(f"{'N':>5} {'term':>14} {'ms':>8} {'persistence ms':>15} {'beyond ms':>10} {'ratio':>6}")
    for n in args.sizes:
        fake, real = mnist_like(n)
        x = fake.clone().requires_grad_(True)
        true_pers = vr_persistence(real, max_dim=1)

        def make(weights, x=x, true_pers=true_pers):
            loss = TopologicalLoss(weights)

            def step():
                x.grad = None
                # a new target object each step, as each training batch brings one: nothing prepared in advance
                value = loss(x, None, true_persistence=replace(true_pers))
                if value.requires_grad:
                    value.backward()

            return step

        def persistence_only(max_dim, x=x):
            def step():
                x.grad = None
                pers = vr_persistence(x, max_dim=max_dim)
                sum(d.sum() for d in pers.diagrams().values()).backward()

            return step

        fns = {"persistence0": persistence_only(0), "persistence1": persistence_only(1)}
        fns.update({name: make({name: 1.0}) for name in ALL_TERMS})
        fns["bottleneck0+1"] = make({"bottleneck0": 1.0, "bottleneck1": 1.0})
        fns["all seven"] = make([1.0] * len(PAPER_TERMS))
        t = median_times(fns, repeats=args.repeats)
        for name, value in t.items():
            if name.startswith("persistence"):
                continue
            dim = TERM_DEGREE.get(name, 1)
            base = t[f"persistence{dim}"]
            print(f"{n:>5} {name:>14} {value * 1e3:>8.2f} {base * 1e3:>15.2f} {(value - base) * 1e3:>10.2f} "
                  f"{value / base:>6.2f}")
    signature(args)


def signature(args):
    import torch

    print(f"\n{'N':>5} {'signature0 fwd+bwd ms':>22} {'persistence of both ms':>23} {'ratio':>6}")
    for n in args.sizes:
        _, real = mnist_like(n)
        gen = torch.Generator().manual_seed(0)
        proj = torch.randn(784, 10, generator=gen) / 28
        z = (real @ proj + 0.1 * torch.randn(n, 10, generator=gen)).requires_grad_(True)

        def both(z=z, real=real):  # the persistence the loss needs, with the diagrams' backward
            z.grad = None
            pz, px = vr_persistence(z, max_dim=0), vr_persistence(real, max_dim=0)
            (pz.diagram(0).sum() + px.diagram(0).sum()).backward()

        def sig(z=z, real=real):
            z.grad = None
            loss_signature(z, real).backward()

        t = median_times({"persistence": both, "signature": sig}, repeats=args.repeats)
        print(f"{n:>5} {t['signature'] * 1e3:>22.2f} {t['persistence'] * 1e3:>23.2f} "
              f"{t['signature'] / t['persistence']:>6.2f}")


if __name__ == "__main__":
    main()
