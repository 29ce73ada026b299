"""Shapes and ranges of the conv VAE and the classifier."""

import pytest
import torch

from topogen.experiments.models import Classifier, ConvVAE


def test_vae_shapes_and_range():
    torch.manual_seed(0)
    model = ConvVAE()
    x = torch.rand(5, 1, 28, 28)
    recon, mu, logvar, z = model(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == z.shape == (5, 10)
    assert (recon > 0).all() and (recon < 1).all()
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (1, 32, (4, 4), (2, 2)),
        (32, 64, (4, 4), (2, 2)),
    ]
    assert model.encoder[-2].out_features == 256


def test_vae_noise_comes_from_the_generator():
    model = ConvVAE(latent_dim=2)
    x = torch.rand(3, 1, 28, 28)
    a = model(x, generator=torch.Generator().manual_seed(1))[3]
    b = model(x, generator=torch.Generator().manual_seed(1))[3]
    assert torch.equal(a, b)


def test_classifier_features():
    clf = Classifier()
    x = torch.rand(4, 1, 28, 28)
    assert clf(x).shape == (4, 10) and clf.features(x).shape == (4, 64)


def test_bad_sizes():
    with pytest.raises(ValueError):
        ConvVAE(latent_dim=0)
