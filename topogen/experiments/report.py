"""How notebooks 03–06 word and tabulate a paired comparison with the VAE: one rule, one table format.

A paired result (the mean difference over seeds with its 95 % confidence
interval, from :func:`topogen.experiments.stats.evaluation_table`) is worded

* **identical to the VAE** when every seed's difference is exactly 0;
* **better / worse than the VAE** when the interval excludes 0 on the better /
  worse side *and* the Holm-adjusted p-value of its family is below 0.05;
* **not distinguishable from the VAE** otherwise, with the minimum detectable
  effect at the seeds used (:func:`~topogen.experiments.stats.minimum_detectable_effect`:
  the true difference a paired t-test at level 0.05 would detect with 80 %
  power, from the spread of the paired differences). "Not distinguishable" is
  not "no effect": it bounds an effect only to within about that size.

The family is the set of comparisons one verdict list words together (the
rows passed to :func:`verdict_lines`); its size is printed with the list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .stats import holm, minimum_detectable_effect

__all__ = ["word", "paired_tables", "family_verdicts", "verdict_lines", "detectable", "ALPHA"]

#: Family-wise error rate of a verdict list.
ALPHA = 0.05


def word(diff: float, ci: float, higher_is_better: bool, p_adjusted: float = 0.0) -> str:
    """The verdict of one paired difference (see the module docstring).

    Parameters
    ----------
    diff, ci : float
        Mean paired difference (model − VAE) and the half-width of its 95 % interval.
    higher_is_better : bool
        Whether a larger value of the measure is better.
    p_adjusted : float
        The comparison's p-value after Holm's correction within its family
        (NaN where the differences have no variation).
    """
    if not (np.isfinite(diff) and np.isfinite(ci)) or ci < 0:
        raise ValueError(f"a paired difference needs a finite mean and a non-negative interval, got {diff}, {ci}")
    if diff == 0 and ci == 0:
        return "identical to the VAE"
    lo, hi = diff - ci, diff + ci
    if (lo > 0 or hi < 0) and not p_adjusted >= ALPHA:  # NaN p: no variation, a constant non-zero difference
        return "better than the VAE" if (lo > 0) == higher_is_better else "worse than the VAE"
    return "not distinguishable from the VAE"


def detectable(ci: float, n: int) -> float:
    """The minimum detectable effect of a paired comparison from its 95 % half-width ``ci`` over ``n`` seeds.

    The half-width is ``t_{0.975, n-1} · sd / √n``; the effect detected with 80 %
    power at level 0.05 is ``(t_{0.975, n-1} + t_{0.8, n-1}) · sd / √n``.
    """
    n = int(n)
    sd = float(ci) * np.sqrt(n) / sps.t.ppf(0.975, n - 1)
    return minimum_detectable_effect(n, sd)


def paired_tables(table: pd.DataFrame, models, digits: int = 3, index=("step", "metric")):
    """The two tables a notebook shows for an :func:`evaluation_table`: values and paired differences.

    Parameters
    ----------
    table : DataFrame
        An :func:`evaluation_table`.
    models : list of str
        The reference (the VAE) first, then the columns in order.
    digits : int
        Decimals of values and differences.
    index : sequence of str
        The row levels (notebook 04 adds ``"latent"``).

    Returns
    -------
    values : DataFrame
        ``mean ± ci`` per row and model, columns in the order of ``models``.
    differences : DataFrame
        ``diff ± ci`` with the VAE and the (uncorrected) paired t-test's ``p`` per model; ``p`` is empty where the
        differences are identically 0.
    """
    fmt = table.copy()
    fmt["value"] = [f"{m:.{digits}f} ± {c:.{digits}f}" for m, c in zip(table["mean"], table["ci"], strict=True)]
    fmt["paired diff vs vae"] = ["" if pd.isna(d) else f"{d:+.{digits}f} ± {c:.{digits}f}"
                                 for d, c in zip(table["diff"], table["diff_ci"], strict=True)]
    fmt["p"] = ["" if pd.isna(p) else f"{p:.3g}" for p in table["p"]]
    values = fmt.pivot_table(index=list(index), columns="model", values="value", aggfunc="first")
    others = fmt[fmt.model != models[0]]
    differences = others.pivot_table(index=list(index), columns="model", values=["paired diff vs vae", "p"],
                                     aggfunc="first")
    return values[[m for m in models if m in values.columns]], differences


def family_verdicts(table: pd.DataFrame, names: dict, rows) -> pd.DataFrame:
    """One family's comparisons with Holm's correction over the family and their verdicts.

    Parameters
    ----------
    table : DataFrame
        An :func:`evaluation_table` (or several concatenated).
    names : dict
        ``metric -> (label, higher_is_better)``.
    rows : iterable of (model, metric, step)
        The family.

    Returns
    -------
    DataFrame
        One row per comparison, in order: ``model, metric, step, diff, diff_ci, n, p, p_holm, verdict``.
    """
    picked = []
    for model, metric, step in rows:
        hit = table[(table.model == model) & (table.metric == metric) & (table.step == step)]
        if len(hit) != 1:
            raise ValueError(f"no single row for model {model!r}, metric {metric!r}, step {step!r}")
        picked.append(hit.iloc[0])
    out = pd.DataFrame([{k: r[k] for k in ("model", "metric", "step", "diff", "diff_ci", "n", "p")} for r in picked],
                       columns=["model", "metric", "step", "diff", "diff_ci", "n", "p"])
    out["p_holm"] = holm(out.p.to_numpy(dtype=float))
    out["verdict"] = [word(r.diff, r.diff_ci, names[r.metric][1], r.p_holm) for r in out.itertuples()]
    return out


def verdict_lines(table: pd.DataFrame, names: dict, rows, results=None, key: str = "", digits: int = 3) -> list[str]:
    """Markdown lines wording each comparison of one family, with Holm's correction over the family.

    Parameters
    ----------
    table : DataFrame
        An :func:`evaluation_table` (or several concatenated).
    names : dict
        ``metric -> (label, higher_is_better)`` (``METRICS``, ``TOPO_METRICS``, ...).
    rows : iterable of (model, metric, step)
        The family, in the order to print.
    results : Results, optional
        Records ``<key>.<model>.<metric>.<step>.{diff,ci,p_holm}`` as printed, and the family's size.
    digits : int
        Decimals of the difference and its interval.
    """
    family = family_verdicts(table, names, rows)
    n_tests = int(family.p_holm.notna().sum())
    lines = []
    for r in family.itertuples():
        k = f"{key}.{r.model}.{r.metric}.{r.step}"

        def num(name, value, spec, k=k):
            return results.num(f"{k}.{name}", value, spec) if results is not None else format(value, spec)

        diff, ci = num("diff", r.diff, f"+.{digits}f"), num("ci", r.diff_ci, f".{digits}f")
        test = "no variation" if np.isnan(r.p_holm) else f"Holm p = {num('p_holm', r.p_holm, '.2g')}"
        line = f"{r.model}: {names[r.metric][0]} at step {r.step}: {diff} ± {ci} ({test}) → **{r.verdict}**"
        if r.verdict.startswith("not distinguishable"):
            mde = num("mde", detectable(r.diff_ci, r.n), f".{digits}f")
            line += f" (detectable at {int(r.n)} seeds: ±{mde})"
        lines.append(line)
    if results is not None:
        results.put(f"{key}.tests", n_tests)
    lines.append(f"*{len(family)} comparisons, {n_tests} with variation; p-values Holm-adjusted over those {n_tests}; "
                 f"\"detectable\": the difference a paired t-test would detect with 80% power at the seeds used.*")
    return lines
