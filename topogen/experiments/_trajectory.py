"""Models of one seed trained in lockstep, sharing one trajectory while their gradients agree.

Under paired noise every model of a seed starts from the same weights and
draws the same noise, and a model whose topological term has no gradient
path at a step takes exactly the plain VAE's step. Such models share one
:class:`_Trajectory`, computed once, until their first step with a gradient
of their own; there a model leaves with a copy of the weights, the optimizer
state and the noise stream (:meth:`_Trajectory.split`) and redoes that step
alone. Every model's weights, logs and evaluations are bit-identical to
training it alone (tested against that). Private: :func:`topogen.experiments.training.train_paired`
is the way in.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..persistence import edge_lengths, pairwise_distances
from .models import ConvVAE


def vae_terms(recon, x, mu, logvar):
    """Summed binary cross-entropy and KL divergence of one batch."""
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce, kld


def mean_pairwise_distance(points: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance over all pairs of rows (differentiable, NaN-safe)."""
    n = points.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=points.device)
    return edge_lengths(points.reshape(n, -1), iu.T).mean()


class _Trajectory:
    """One set of weights with its optimizer and noise stream, followed by one or more models."""

    def __init__(self, model: ConvVAE, opt: torch.optim.Optimizer, noise: torch.Generator, members: list):
        self.model, self.opt, self.noise, self.members = model, opt, noise, members

    def split(self, name: str, noise_state: torch.Tensor, lr: float) -> _Trajectory:
        """``name`` leaves with copies of the weights and optimizer state, its noise rewound to ``noise_state``."""
        self.members.remove(name)
        model = copy.deepcopy(self.model)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        opt.load_state_dict(copy.deepcopy(self.opt.state_dict()))
        noise = torch.Generator(device=self.noise.device)
        noise.set_state(noise_state)
        return _Trajectory(model, opt, noise, [name])


class Lockstep:
    """The trajectories of one seed's models, stepped together batch by batch.

    Parameters
    ----------
    specs : dict
        ``{name: (kind, weights)}`` of every model.
    losses : dict
        ``{name: TopologicalLoss}`` of the models with a topological term.
    logs : dict
        ``{name: RunLog}`` filled in step by step.
    init : dict
        The initial ``state_dict`` every model starts from.
    config : TrainConfig
    seed : int
        Seeds the noise (``seed + 1``).
    """

    def __init__(self, specs: dict, losses: dict, logs: dict, init: dict, config, seed: int):
        self.specs, self.losses, self.logs, self.init, self.config = specs, losses, logs, init, config
        device = torch.device(config.device)
        if config.noise == "sequential":  # one stream drawn in turn: every model follows its own trajectory
            shared = torch.Generator(device=device).manual_seed(seed + 1)
            self.trajectories = [self._start([name], shared) for name in specs]
        else:  # identical noise: all models share one trajectory until their losses' gradients differ
            self.trajectories = [self._start(list(specs), torch.Generator(device=device).manual_seed(seed + 1))]

    def _start(self, members, noise) -> _Trajectory:
        model = ConvVAE(latent_dim=self.config.latent_dim).to(self.config.device)
        model.load_state_dict(self.init)
        model.train()
        return _Trajectory(model, torch.optim.Adam(model.parameters(), lr=self.config.lr), noise, members)

    def step(self, x, input_pers, step: int) -> None:
        """Every model takes step ``step`` on batch ``x`` (``input_pers``: its persistence, or None)."""
        per_batch = {}
        for traj in list(self.trajectories):
            self.trajectories += self._advance(traj, x, input_pers, step, per_batch)

    def evaluate(self, evaluator, step: int) -> None:
        """Run ``evaluator`` once per trajectory (its models have the same weights) after ``step`` steps."""
        for traj in self.trajectories:
            traj.model.eval()
            result = evaluator(traj.model)
            traj.model.train()
            for i, name in enumerate(traj.members):
                self.logs[name].evaluations[step] = result if i == 0 else copy.deepcopy(result)

    def keep_weights(self) -> None:
        """Put each model's final weights (CPU copies) into its log."""
        for traj in self.trajectories:
            for name in traj.members:
                self.logs[name].state_dict = {k: v.detach().cpu().clone() for k, v in traj.model.state_dict().items()}

    def _topo_value(self, name, recon, mu, x, input_pers, per_batch):
        kind, topo, b = self.specs[name][0], self.losses[name], x.shape[0]
        if kind == "topovae":
            return topo(recon.reshape(b, -1), None, true_persistence=input_pers)
        if kind == "topovae_z":
            if "scaled" not in per_batch:  # same critical edges, rescaled cloud (once per batch)
                flat = x.reshape(b, -1)
                d = input_pers.distances  # computed once with the input's persistence
                if d is None:  # persistence from a cache: the same matrix, recomputed
                    d = pairwise_distances(flat)
                scale = float(d[np.triu_indices(b, 1)].mean())
                per_batch["scaled"] = input_pers.with_points(flat / scale)
            return topo(mu / mean_pairwise_distance(mu), None, true_persistence=per_batch["scaled"])
        # topovae_z_raw, topovae_sig: the latent means against the input batch as they are
        return topo(mu, None, true_persistence=input_pers)

    def _advance(self, traj, x, input_pers, step, per_batch) -> list:
        """Step ``traj`` on batch ``x``; models whose loss gains a gradient of its own split off and step alone."""
        b = x.shape[0]
        noise_state = traj.noise.get_state() if len(traj.members) > 1 else None
        recon, mu, logvar, _ = traj.model(x, generator=traj.noise)
        bce, kld = vae_terms(recon, x, mu, logvar)
        loss = (bce + kld) / b
        values, terms = {}, {}
        for name in traj.members:
            if name in self.losses:
                values[name] = self._topo_value(name, recon, mu, x, input_pers, per_batch)
                terms[name] = self.losses[name].last_terms
        with_grad = [name for name in traj.members if name in values and values[name].requires_grad]
        # A term without a gradient path adds a constant: the model takes the plain VAE step. Those models stay;
        # if none does, the first model with a gradient keeps the trajectory. The others leave.
        keeper = with_grad[0] if len(with_grad) == len(traj.members) else None
        forks = [traj.split(name, noise_state, self.config.lr) for name in with_grad if name != keeper]
        if keeper is not None:
            loss = loss + values[keeper] / b
        traj.opt.zero_grad(set_to_none=True)
        loss.backward()
        traj.opt.step()
        for name in traj.members:
            log = self.logs[name]
            log.bce[step] = bce.item() / b
            log.kld[step] = kld.item() / b
            if name in values:
                log.topo_grad[step] = values[name].requires_grad
                for k, v in terms[name].items():
                    log.topo[k][step] = v
        for fork in forks:  # one model each: it redoes this step alone, from the same weights and noise
            self._advance(fork, x, input_pers, step, per_batch)
        return forks
