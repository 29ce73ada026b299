"""Results files (topogen.reproduce.results) and the wording of paired results (topogen.experiments.report)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from topogen.experiments.report import paired_tables, verdict_lines, word
from topogen.reproduce import Results
from topogen.reproduce.results import load_results, results_path


def test_num_records_the_printed_number(tmp_path):
    res = Results("00_x", figures_dir=tmp_path)
    assert res.num("a", 0.0703, "+.3f") == "+0.070"
    assert res.num("b", np.float32(27.44), ".0f") == "27"
    assert res.num("c", 0.25, ".0%") == "25%"
    assert res.num("d", np.int64(597), "d") == "597"
    assert res.num("e", 596.7, "g") == "596.7"
    assert res.values == {"a": 0.07, "b": 27, "c": 25, "d": 597, "e": 596.7}
    assert isinstance(res.values["b"], int) and isinstance(res.values["a"], float)


def test_put_takes_plain_values_and_lists(tmp_path):
    res = Results("00_x", figures_dir=tmp_path)
    res.put("steps", np.array([228, 283, None], dtype=object))
    res.put("flag", np.bool_(True))
    res.put("ints", [np.int64(1), 2])
    res.put("zero_d", np.array(0.5))
    assert res.values == {"steps": [228, 283, None], "flag": True, "ints": [1, 2], "zero_d": 0.5}
    assert res.values["flag"] is True
    res.save()
    assert res.path == tmp_path / "00_x.json"
    assert json.loads(res.path.read_text()) == res.values
    assert load_results(tmp_path) == {"00_x": res.values}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": 1}, object()])
def test_bad_values_are_named(tmp_path, value):
    with pytest.raises(ValueError, match="result must be"):
        Results("00_x", figures_dir=tmp_path).put("k", value)


@pytest.mark.parametrize("key", ["", " k", 3])
def test_bad_keys(tmp_path, key):
    with pytest.raises(ValueError, match="key"):
        Results("00_x", figures_dir=tmp_path).put(key, 1)


@pytest.mark.parametrize("name", ["", "a/b", "x.json"])
def test_bad_names(name):
    with pytest.raises(ValueError, match="results name"):
        results_path(name)


def test_file_follows_the_figures(tmp_path, monkeypatch):
    from topogen.reproduce.paths import FIGURES_ENV, repo_root

    monkeypatch.delenv(FIGURES_ENV, raising=False)
    assert results_path("03_x") == repo_root() / "results" / "03_x.json"
    monkeypatch.setenv(FIGURES_ENV, str(tmp_path / "stage"))  # under the runner: staged with the figures
    assert results_path("03_x") == tmp_path / "stage" / "03_x.json"
    assert results_path("03_x", tmp_path / "mine") == tmp_path / "mine" / "03_x.json"


@pytest.mark.parametrize("diff, ci, up, p, expected", [
    (0.0, 0.0, True, math.nan, "identical to the VAE"),
    (0.5, 0.2, True, 0.01, "better than the VAE"),
    (0.5, 0.2, False, 0.01, "worse than the VAE"),
    (-0.5, 0.2, False, 0.01, "better than the VAE"),
    (-0.5, 0.2, True, 0.01, "worse than the VAE"),
    (0.5, 0.2, True, 0.2, "not distinguishable from the VAE"),  # interval excludes 0, Holm does not reject
    (0.1, 0.2, True, 0.001, "not distinguishable from the VAE"),
    (0.3, 0.0, True, math.nan, "better than the VAE"),  # the same non-zero difference in every seed
])
def test_word(diff, ci, up, p, expected):
    assert word(diff, ci, up, p) == expected


def test_word_rejects_bad_input():
    with pytest.raises(ValueError, match="paired difference"):
        word(math.nan, 0.1, True)


def _table():
    rows = []
    for model, diffs in (("vae", (None, None)), ("a", (-0.4, 0.0)), ("b", (0.02, 0.0))):
        for metric, d, p in (("m1", diffs[0], 0.004), ("m2", diffs[1], math.nan)):
            rows.append({"model": model, "step": 10, "metric": metric, "mean": 1.0, "ci": 0.1,
                         "diff": math.nan if d is None else d, "diff_ci": math.nan if d is None else abs(d) / 10,
                         "p": math.nan if d is None else (p if d else math.nan), "n": 5})
    return pd.DataFrame(rows)


def test_verdict_lines_holm_over_the_family_and_recorded(tmp_path):
    res = Results("00_x", figures_dir=tmp_path)
    names = {"m1": ("measure one", False), "m2": ("measure two", True)}
    family = [("a", "m1", 10), ("a", "m2", 10), ("b", "m1", 10)]
    lines = verdict_lines(_table(), names, family, res, key="k")
    # two tests with variation (p = 0.004 each): Holm gives 0.008 for both
    assert lines[0] == "a: measure one at step 10: -0.400 ± 0.040 (Holm p = 0.008) → **better than the VAE**"
    assert lines[1] == "a: measure two at step 10: +0.000 ± 0.000 (no variation) → **identical to the VAE**"
    assert lines[2] == "b: measure one at step 10: +0.020 ± 0.002 (Holm p = 0.008) → **worse than the VAE**"
    assert "3 comparisons, 2 with variation" in lines[3]
    assert res.values["k.a.m1.10.diff"] == -0.4 and res.values["k.a.m1.10.p_holm"] == 0.008
    assert res.values["k.tests"] == 2
    with pytest.raises(ValueError, match="no single row"):
        verdict_lines(_table(), names, [("c", "m1", 10)])


def test_a_not_distinguishable_verdict_states_the_detectable_effect(tmp_path):
    table = _table()
    table.loc[(table.model == "b") & (table.metric == "m1"), ["diff", "diff_ci", "p"]] = (0.02, 0.05, 0.3)
    res = Results("00_x", figures_dir=tmp_path)
    line = verdict_lines(table, {"m1": ("measure one", False)}, [("b", "m1", 10)], res, key="k")[0]
    # sd = 0.05 sqrt(5) / t(0.975, 4); detectable = (t(0.975, 4) + t(0.8, 4)) sd / sqrt(5)
    t975, t80 = 2.7764451051977987, 0.9409645724550244
    expected = (t975 + t80) * 0.05 / t975
    assert line.endswith(f"**not distinguishable from the VAE** (detectable at 5 seeds: ±{expected:.3f})")
    assert res.values["k.b.m1.10.mde"] == round(expected, 3)


def test_paired_tables_format():
    values, differences = paired_tables(_table(), ["vae", "a", "b"])
    assert list(values.columns) == ["vae", "a", "b"]
    assert values.loc[(10, "m1"), "a"] == "1.000 ± 0.100"
    assert differences.loc[(10, "m1"), ("paired diff vs vae", "a")] == "-0.400 ± 0.040"
    assert differences.loc[(10, "m2"), ("p", "a")] == ""
