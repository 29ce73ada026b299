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


@pytest.mark.parametrize("scale", [1e-9, 1.0, 1e6])
def test_paired_difference_tests_small_and_large_measures_alike(scale):
    """Only an exactly constant difference goes untested: differences that vary by little are tested at any scale."""
    from scipy import stats

    a = np.array([1.0, 2.0, 3.5]) * scale
    b = np.zeros(3)
    assert S.paired_difference(a, b)["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    near = np.array([1.0, 1.000001, 1.000002]) * scale  # a consistent difference with a spread of 1e-6 of it
    assert S.paired_difference(near, b)["p"] == pytest.approx(stats.ttest_rel(near, b).pvalue)
    assert S.paired_difference(near, b)["p"] < 1e-9


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


def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone: 0.06
    np.testing.assert_allclose(S.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # a comparison without variation has no test: NaN stays NaN and the family has two members
    np.testing.assert_allclose(S.holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])
    np.testing.assert_allclose(S.holm([0.6, 0.9]), [1.0, 1.0])  # capped at 1
    assert S.holm([]).size == 0
    with pytest.raises(ValueError, match="p-values"):
        S.holm([0.5, 1.5])


def test_equivalence_test_by_hand():
    a, b = np.array([3.0, 5.0, 7.0, 9.0]), np.array([2.0, 3.0, 4.0, 5.0])  # differences 1, 2, 3, 4
    se = math.sqrt(5 / 3) / 2  # sd of the differences over sqrt(4)
    out = S.equivalence_test(a, b, margin=5.0)
    assert out["diff"] == pytest.approx(2.5)
    assert out["p_upper"] == pytest.approx(0.015233, abs=1e-5)  # t = (2.5 - 5) / se = -3.873, 3 df
    assert out["p_lower"] < 1e-3 and out["p"] == out["p_upper"] and out["equivalent"]
    assert out["upper"] == pytest.approx(2.5 + 2.353363 * se, rel=1e-5)  # t_0.95 with 3 df
    assert out["upper"] < 5.0  # equivalent <=> the 90% interval lies inside the margins
    tight = S.equivalence_test(a, b, margin=3.0)
    assert not tight["equivalent"] and tight["upper"] > 3.0
    same = S.equivalence_test([1.0, 2.0], [1.0, 2.0], margin=0.1)
    assert same["equivalent"] and same["p"] == 0.0
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="margin"):
            S.equivalence_test(a, b, margin=bad)


def test_minimum_detectable_effect_by_hand():
    # (t_0.975,9 + t_0.80,9) / sqrt(10) = (2.2622 + 0.8834) / 3.1623 for sd = 1 (t tables)
    assert S.minimum_detectable_effect(10, 1.0) == pytest.approx((2.262157 + 0.883404) / math.sqrt(10), rel=1e-5)
    assert S.minimum_detectable_effect(10, 2.0) == pytest.approx(2 * S.minimum_detectable_effect(10, 1.0))
    with pytest.raises(ValueError, match="n must"):
        S.minimum_detectable_effect(1, 1.0)
