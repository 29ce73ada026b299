"""The paper's convolutional VAE for 28x28 images."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvVAE", "Classifier"]


class ConvVAE(nn.Module):
    """Convolutional VAE: conv 1→32→64 (kernel 4, stride 2), fc 256, latent 10.

    The decoder mirrors the encoder with transposed convolutions and ends in a
    sigmoid, so outputs are pixel intensities in (0, 1).

    Parameters
    ----------
    latent_dim : int
        Size of the latent space (10 in the paper; 2 for direct plots).
    hidden : int
        Width of the fully connected layer (256).
    """

    def __init__(self, latent_dim: int = 10, hidden: int = 256):
        super().__init__()
        if latent_dim < 1 or hidden < 1:
            raise ValueError("latent_dim and hidden must be positive")
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1),  # 28 -> 14
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),  # 14 -> 7
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, hidden),
            nn.ReLU(),
        )
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 64 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),  # 7 -> 14
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # 14 -> 28
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of ``x`` (``(B, 1, 28, 28)``)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, 28, 28)`` from latents ``(B, latent_dim)``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """Reconstruction, mean, log-variance and the sampled latent ``z``.

        ``generator`` draws the reparameterization noise, so paired models can
        share it.
        """
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar, z


class Classifier(nn.Module):
    """A small CNN for 28x28 digits; ``features`` is its penultimate layer (64-D)."""

    def __init__(self, n_classes: int = 10, n_features: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 7
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, n_features),
            nn.ReLU(),
        )
        self.head = nn.Linear(n_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
