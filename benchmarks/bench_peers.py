"""topogen side by side with torch-topological on every feature both libraries have.

On the same clouds (N bundled MNIST digits, 784-D, and their 10-D random
projections), forward + backward, interleaved medians in one run:

* **persistence**, degrees 0..d for d = 0, 1, 2: the diagrams of a cloud and the
  backward of their sum (``vr_persistence`` vs ``VietorisRipsComplex``);
* **Wasserstein**, q = 1 and q = 2, degrees 0 and 1, between a generated batch and
  a real one, both batches' persistence inside the timed call
  (``TopologicalLoss({"wasserstein0": 1, "wasserstein1": 1}, wasserstein_q=...)`` vs
  ``WassersteinDistance(q=...)`` over ``VietorisRipsComplex(dim=1)``);
* **signature loss**, degree 0, normalized, a 10-D latent batch against its
  784-D input batch, both clouds' persistence inside the timed call. The two
  libraries differ by definition: topogen takes ½‖·‖₂² per direction (Moor et al.,
  2020), torch-topological ½‖·‖₂. Both are timed; the peer's definition is also
  computed from topogen's own gather of the critical edges (``norm`` row), so its
  value can be compared and its time set beside the peer's.

Values are checked where the definitions agree (the peer works in float32, topogen
reads lengths off a float64 distance matrix; tolerance relative 1e-4). The peer is
an optional dependency: ``pip install -e .[bench]``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_peers.py [--repeats 30] [--sizes 64 128 256]
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads: no BLAS threads spinning between calls

import sys  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_times, mnist_like, parse_args, ratio_interval, vae_step_ms  # noqa: E402

from topogen import TopologicalLoss, loss_signature, vr_persistence  # noqa: E402
from topogen.signature import _longest_edge, _pairing, _select  # noqa: E402

RTOL = 1e-4


def peer():
    try:
        from torch_topological.nn import SignatureLoss, VietorisRipsComplex, WassersteinDistance
    except ImportError:
        sys.exit("torch-topological is not installed: pip install -e .[bench]")
    return VietorisRipsComplex, WassersteinDistance, SignatureLoss


def clouds(n: int):
    """A generated and a real 784-D batch, and the real batch's 10-D random projection (its "latent")."""
    fake, real = mnist_like(n)
    proj = torch.randn(784, 10, generator=torch.Generator().manual_seed(0)) / 784**0.5
    return fake, real, real @ proj


def _close(a, b) -> bool:
    a, b = np.sort(np.asarray(a, dtype=np.float64), axis=0), np.sort(np.asarray(b, dtype=np.float64), axis=0)
    return a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=RTOL * max(1.0, float(np.abs(b).max(initial=0))))


def persistence_rows(x, dim, VR):
    ours_x, peer_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    vr = VR(dim=dim)

    def ours():
        ours_x.grad = None
        dgms = vr_persistence(ours_x, max_dim=dim).diagrams()
        sum(d.sum() for d in dgms.values()).backward()
        return dgms

    def theirs():
        peer_x.grad = None
        info = vr(peer_x)
        sum(i.diagram.sum() for i in info).backward()
        return info

    a, b = ours(), theirs()
    same = all(_close(a[d].detach(), i.diagram.detach()) for d, i in zip(range(dim + 1), b, strict=True))
    same = same and torch.allclose(ours_x.grad.float(), peer_x.grad, rtol=1e-3, atol=1e-4)
    return ours, theirs, same


def wasserstein_rows(fake, real, q, VR, W):
    ours_x, peer_x = fake.clone().requires_grad_(True), fake.clone().requires_grad_(True)
    loss = TopologicalLoss({"wasserstein0": 1.0, "wasserstein1": 1.0}, wasserstein_q=q)
    vr, dist = VR(dim=1), W(q=q)

    def ours():
        ours_x.grad = None
        value = loss(ours_x, real)
        value.backward()
        return value

    def theirs():
        peer_x.grad = None
        value = dist(vr(peer_x), vr(real))
        value.backward()
        return value

    ours(), theirs()
    # Per degree (the peer sums the q-th powers over degrees before the root, topogen sums the distances).
    per_ours = [float(v) for v in loss.terms(fake, real).values()]
    info_x, info_y = vr(fake), vr(real)
    per_peer = [float(dist(info_x[d], info_y[d])) for d in (0, 1)]
    return ours, theirs, _close(per_ours, per_peer)


def signature_rows(latent, real, Sig, VR):
    ours_z, peer_z, norm_z = (latent.clone().requires_grad_(True) for _ in range(3))
    sig, vr = Sig(p=2, normalise=True, dimensions=0), VR(dim=0)

    def ours():
        ours_z.grad = None
        value = loss_signature(ours_z, real)
        value.backward()
        return value

    def norm():  # the peer's definition, ½‖·‖₂ per direction, from topogen's gather
        norm_z.grad = None
        pz, px = vr_persistence(norm_z, max_dim=0), vr_persistence(real, max_dim=0)
        own, other = _pairing(pz, (0,)), _pairing(px, (0,))
        a_own, a_other = _select(norm_z, [own, other], _longest_edge(pz))
        b_own, b_other = _select(px.points, [own, other], _longest_edge(px))
        value = 0.5 * torch.linalg.vector_norm(b_other - a_other) + 0.5 * torch.linalg.vector_norm(a_own - b_own)
        value.backward()
        return value

    def theirs():
        peer_z.grad = None
        value = sig([peer_z, vr(peer_z)], [real, vr(real)])
        value.backward()
        return value

    a, b, c = ours(), norm(), theirs()
    a, b, c = (float(v.detach()) for v in (a, b, c))
    return ours, norm, theirs, _close([b], [c]), a, c


def main():
    args = parse_args(__doc__, [64, 128, 256])
    VR, W, Sig = peer()
    print(f"# torch-topological {version('torch-topological')}, giotto-ph {version('giotto-ph')}, "
          f"POT {version('POT')}; VAE step (B = 128) {vae_step_ms():.1f} ms on this machine")
    print("# ratio = topogen / peer, ratio of medians with its 95 % bootstrap interval over the interleaved rounds")
    print(f"{'N':>4} {'feature':<34} {'topogen ms':>10} {'peer ms':>9} {'ratio [95 % interval]':>22}  values")
    for n in args.sizes:
        fake, real, latent = clouds(n)
        rows = []
        for dim in (0, 1, 2):
            for cloud, x in (("784-D", real), ("10-D", latent)):
                ours, theirs, same = persistence_rows(x, dim, VR)
                rows.append((f"persistence 0..{dim}, {cloud}", ours, theirs, same, 3 if dim == 2 else 1))
        for q in (1, 2):
            ours, theirs, same = wasserstein_rows(fake, real, q, VR, W)
            rows.append((f"Wasserstein q={q:g}, degrees 0+1", ours, theirs, same, 1))
        ours, norm, theirs, same, v_sq, v_peer = signature_rows(latent, real, Sig, VR)
        rows.append(("signature, ½‖·‖₂² (Moor et al.)", ours, theirs,
                     f"differ by definition ({v_sq:.4g} vs {v_peer:.4g})", 1))
        rows.append(("signature, ½‖·‖₂ (the peer's)", norm, theirs, same, 1))
        for name, ours, theirs, same, scale in rows:
            reps = max(5, args.repeats // scale)
            t = interleaved_times({"ours": ours, "peer": theirs}, repeats=reps)
            ratio, low, high = ratio_interval(t["ours"], t["peer"])
            verdict = same if isinstance(same, str) else ("agree" if same else "DIFFER")
            print(f"{n:>4} {name:<34} {1e3 * np.median(t['ours']):>10.2f} {1e3 * np.median(t['peer']):>9.2f} "
                  f"{ratio:>6.2f} [{low:.2f}, {high:.2f}]{'':>4}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
