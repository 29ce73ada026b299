"""Statistics over seeds against hand-computed values."""

import math

import numpy as np
import pytest

from topogen.experiments import stats as S


def test_mean_ci_and_paired_difference():
    mean, half = S.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)
    assert S.mean_ci([5.0]) == (5.0, 0.0)
    res = S.paired_difference([2.0, 3.0, 4.5], [1.0, 2.0, 3.0])
    assert res["diff"] == pytest.approx(7 / 6) and res["n"] == 3
    from scipy import stats

    assert res["p"] == pytest.approx(stats.ttest_rel([2.0, 3.0, 4.5], [1.0, 2.0, 3.0]).pvalue)
    assert math.isnan(S.paired_difference([1.0, 2.0], [0.0, 1.0])["p"])  # constant difference
    with pytest.raises(ValueError):
        S.paired_difference([1.0], [1.0, 2.0])


def test_compare_to_null():
    same = S.compare_to_null([0.1, -0.2, 0.3], [0.1, -0.2, 0.3])
    assert same["identical"] and same["p_ks"] == 1.0 and math.isnan(same["p_paired"]) and same["excess"] == 0
    rng = np.random.default_rng(1)
    null = rng.normal(size=12)
    shifted = S.compare_to_null(null + 5.0, null)
    assert not shifted["identical"] and shifted["excess"] == pytest.approx(5.0)
    assert shifted["p_paired"] < 0.01 and shifted["p_ks"] < 0.01
    with pytest.raises(ValueError):
        S.compare_to_null([1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        S.compare_to_null([1.0, np.nan], [1.0, 2.0])
