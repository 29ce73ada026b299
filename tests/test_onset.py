"""The onset study (notebook 06): training as train_paired does it, the flags, the onset units."""

import numpy as np
import pytest

from topogen.experiments.onset import (
    _ratio,
    first_gradient_step,
    onset_unit,
    persim_flags,
    topogen_flags,
    topovae_trace,
)
from topogen.experiments.training import PAPER_WEIGHTS, TrainConfig, train_paired


@pytest.mark.parametrize("weights", [PAPER_WEIGHTS, {"wasserstein0": 2.0, "bottleneck1": 1.0}])
def test_the_trace_trains_topovae_as_train_paired_does(data, weights):
    """Bit for bit: the same BCE every step, the same gradient flags (none with the paper's weights at first)."""
    config = TrainConfig(steps=6, batch_size=32, weights=weights, eval_at=())
    trace = topovae_trace(data, 2, config, keep_steps=6)
    log = train_paired(data, 2, config, models=("topovae",), progress=False)["topovae"]
    np.testing.assert_array_equal(trace["bce"], log.bce)
    np.testing.assert_array_equal(trace["grad"], log.topo_grad)
    assert trace["ratio"].shape == (6, 2) and len(trace["diagrams"]) == 6
    # the flags topogen's matching gives on the kept diagrams are the term's own flags
    flags = [any(topogen_flags(d).values()) for d in trace["diagrams"]]
    if weights is PAPER_WEIGHTS:
        assert flags == list(trace["grad"])


def test_stopping_at_onset_keeps_the_steps_before(data):
    config = TrainConfig(steps=4, batch_size=32, weights={"wasserstein0": 1.0}, eval_at=())
    trace = topovae_trace(data, 0, config, stop_at_onset=True)
    assert trace["onset"] == 0 and len(trace["grad"]) == 1
    # a trace goes on to keep_steps, with the same onset and the same first step
    kept = topovae_trace(data, 0, config, stop_at_onset=True, keep_steps=3)
    assert kept["onset"] == 0 and len(kept["grad"]) == 3 and len(kept["diagrams"]) == 3
    assert kept["bce"][0] == trace["bce"][0]
    assert first_gradient_step([False, False, True, True]) == 2 and first_gradient_step([False]) is None


def test_the_collapse_statistic_is_the_ratio_of_longest_bars():
    np.testing.assert_array_equal(_ratio(np.array([1.0, 0.0, 2.0]), np.array([4.0, 0.0, 0.0])), [0.25, 0.0, np.inf])


def _diagrams(recon1, data1):
    """Degree-0 diagrams of a collapsed batch (short bars) and of the data (long bars), with given degree-1 parts."""
    recon0 = np.array([[0.0, 0.1], [0.0, 0.2], [0.0, 0.3]])
    data0 = np.array([[0.0, 5.0], [0.0, 6.0], [0.0, 9.0]])
    return {0: (recon0, data0), 1: (np.array(recon1).reshape(-1, 2), np.array(data1).reshape(-1, 2))}


def test_flags_of_topogen_and_persim_on_hand_made_diagrams():
    # a collapsed batch: every bar of the data is matched to the diagonal and realizes the distance: no gradient
    collapsed = _diagrams([[1.0, 1.2]], [[4.0, 5.0]])
    assert topogen_flags(collapsed) == {0: False, 1: False}
    assert persim_flags(collapsed) == {0: (False, False), 1: (False, False)}
    # a loop of the reconstructions outlives the data's (ratio 2 > 1): the realizing pair is the reconstructions'
    loop = _diagrams([[1.0, 3.0]], [[4.0, 5.0]])
    assert topogen_flags(loop) == {0: False, 1: True}
    assert persim_flags(loop)[1] == (True, False)
    # two pairs tie at the distance, one of each kind: persim says it is a tie
    tie = _diagrams([[1.0, 3.0]], [[4.0, 6.0]])
    assert topogen_flags(tie)[1] is True  # topogen prefers the learnable diagram among ties
    assert persim_flags(tie)[1][1] is True


def test_onset_unit_checks_the_training_set_size():
    with pytest.raises(ValueError, match="n_train"):
        onset_unit(0, batch_size=128, n_train=100)


@pytest.mark.slow
def test_onset_unit_runs_on_a_cut_training_set():
    out = onset_unit(1, batch_size=32, n_train=64, max_steps=3, trace_steps=2)
    assert len(out["grad"]) == 3 and len(out["diagrams"]) == 2  # no gradient: to max_steps, diagrams of 2 steps
