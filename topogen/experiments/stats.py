"""Statistics over seeds: means with t-based 95% intervals, paired differences, comparisons with a null.

Every comparison of the notebooks is paired: models of one seed share their
initial weights, batches and (by default) noise, so differences are taken
seed by seed before any interval is computed.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["mean_ci", "paired_difference", "compare_to_null", "placebo_differences", "evaluation_table", "holm",
           "equivalence_test",
           "minimum_detectable_effect"]


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t-based confidence interval (0 for one value)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("no values")
    if v.size == 1:
        return float(v[0]), 0.0
    half = stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def paired_difference(a, b, confidence: float = 0.95) -> dict:
    """Paired comparison of ``a - b`` over seeds: mean, CI half-width, paired t-test p-value.

    With fewer than two pairs, or when every pair differs by exactly the same
    amount (no variation, so no test), the p-value is NaN.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired samples must have the same non-zero length, got {a.size} and {b.size}")
    diff = a - b
    mean, half = mean_ci(diff, confidence)
    if a.size < 2 or np.all(diff == diff[0]):  # exact: a tolerance would skip the test of small measures
        p = float("nan")
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"diff": mean, "ci": half, "p": p, "n": int(a.size)}


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two flat float64 samples of one length >= 2, paired by position (``ValueError`` otherwise)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"need two paired samples of the same length >= 2, got {a.size} and {b.size}")
    return a, b


def compare_to_null(treated, null, confidence: float = 0.95) -> dict:
    """Are paired differences of a treatment distributed differently from a placebo's?

    ``treated[i]`` and ``null[i]`` are per-seed paired differences with the
    same reference (e.g. TopoVAE − VAE and VAE′ − VAE, where VAE′ is a second
    VAE that differs from the reference only as the treated model does, by its
    noise). Reports both means with CIs and two tests:

    * ``p_paired``: Wilcoxon signed-rank test of ``treated - null`` (the seeds
      pair them), NaN when every such difference is 0;
    * ``p_ks``: two-sample Kolmogorov–Smirnov test of the two sets (1.0 for
      identical sets).

    Returns
    -------
    dict
        ``treated``, ``treated_ci``, ``null``, ``null_ci``, ``excess`` (mean of
        ``treated - null``), ``excess_ci``, ``p_paired``, ``p_ks``,
        ``identical`` (every seed's two differences are equal), ``n``.
    """
    t, z = _paired(treated, null)
    if not (np.isfinite(t).all() and np.isfinite(z).all()):
        raise ValueError("paired differences must be finite")
    excess = t - z
    identical = bool(np.all(excess == 0))
    p_paired = float("nan") if identical else float(stats.wilcoxon(t, z).pvalue)
    p_ks = 1.0 if identical else float(stats.ks_2samp(t, z).pvalue)
    out = {"n": int(t.size), "identical": identical, "p_paired": p_paired, "p_ks": p_ks}
    for key, values in (("treated", t), ("null", z), ("excess", excess)):
        out[key], out[f"{key}_ci"] = mean_ci(values, confidence)
    return out


def placebo_differences(treated_runs, model: str, null_runs, null_model: str, metrics, *, early: int, grid_step: int,
                        eval_steps, reference: str = "vae") -> dict:
    """The quantities of a placebo control, per seed: ``{label: (model − reference, null_model − reference)}``.

    ``treated_runs[i]`` and ``null_runs[i]`` are seed ``i``'s runs (dicts of
    :class:`~topogen.experiments.training.RunLog`), each with its own
    ``reference``. The quantities: the mean training BCE of the first
    ``early`` steps, the mean absolute pixel difference of the step-``grid_step``
    reconstruction grids, and every metric of ``metrics`` at every step of
    ``eval_steps``. Feed each pair to :func:`compare_to_null`.
    """
    if len(treated_runs) != len(null_runs):
        raise ValueError(f"treated and null runs must pair seed by seed, got {len(treated_runs)} and {len(null_runs)}")

    def both(f):
        return (np.array([f(r, model) for r in treated_runs]), np.array([f(r, null_model) for r in null_runs]))

    grid = lambda r, m: r[m].evaluations[grid_step]["recon_grid"]  # noqa: E731
    out = {f"training BCE, mean of steps 1–{early}":
           both(lambda r, m: r[m].bce[:early].mean() - r[reference].bce[:early].mean()),
           f"pixel |Δ| of the step-{grid_step} grid": both(lambda r, m: np.abs(grid(r, m) - grid(r, reference)).mean())}
    for step in eval_steps:
        for metric in metrics:
            out[f"{metric} @ {step}"] = both(lambda r, m, s=step, k=metric: r[m].evaluations[s][k]
                                             - r[reference].evaluations[s][k])
    return out


def evaluation_table(runs: list, models, reference: str = "vae", metrics=None, steps=None):
    """Metrics over seeds as a long table: mean ± CI per model, paired difference vs ``reference``.

    Parameters
    ----------
    runs : list of dict
        One ``{model: RunLog}`` per seed (paired runs).
    models : sequence of str
    reference : str
        The model the others are compared with, seed by seed.
    metrics : sequence of str, optional
        Default: every key of :data:`~topogen.experiments.metrics.METRICS`.
    steps : sequence of int, optional
        Evaluation steps to include (default: all).

    Returns
    -------
    pandas.DataFrame
        Columns: step, metric, model, mean, ci, diff, diff_ci, p, n.
    """
    import pandas as pd

    from .metrics import METRICS

    metrics = list(metrics or METRICS)
    steps = sorted(steps or runs[0][reference].evaluations)
    rows = []
    for step in steps:
        for metric in metrics:
            ref = [r[reference].evaluations[step][metric] for r in runs]
            for model in models:
                vals = [r[model].evaluations[step][metric] for r in runs]
                mean, ci = mean_ci(vals)
                row = {"step": step, "metric": metric, "model": model, "mean": mean, "ci": ci, "n": len(vals)}
                if model != reference:
                    pd_ = paired_difference(vals, ref)
                    row.update(diff=pd_["diff"], diff_ci=pd_["ci"], p=pd_["p"])
                rows.append(row)
    return pd.DataFrame(rows)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values for one family of tests (family-wise error control).

    The k-th smallest of m p-values becomes ``max_{j<=k} min(1, (m - j + 1) p_(j))``;
    reject a hypothesis at level α when its adjusted p-value is below α. NaN
    entries (comparisons without any variation, so no test) stay NaN and do not
    count in m.
    """
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    if tested.size:
        order = tested[np.argsort(p[tested], kind="stable")]
        m = tested.size
        scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(scaled)
    return out


def equivalence_test(a, b, margin: float, alpha: float = 0.05) -> dict:
    """Two one-sided paired t-tests (TOST): is the mean of ``a - b`` within ``±margin``?

    ``margin`` is the largest difference that counts as "no difference"; it is
    fixed before looking at the data. Equivalence is shown at level ``alpha``
    when both one-sided tests reject, i.e. ``p = max(p_lower, p_upper) < alpha``,
    which is the same as the ``1 - 2 alpha`` confidence interval lying inside
    ``(-margin, margin)``. Identical pairs (no variation) are equivalent for any
    positive margin.

    Returns
    -------
    dict
        ``diff``, ``lower`` and ``upper`` (the ``1 - 2 alpha`` interval),
        ``p_lower`` (H0: diff <= -margin), ``p_upper`` (H0: diff >= margin),
        ``p``, ``equivalent``, ``margin``, ``n``.
    """
    a, b = _paired(a, b)
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a positive number, got {margin!r}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha!r}")
    d = a - b
    n, mean, sd = d.size, float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        inside = abs(mean) < margin
        p_lower = p_upper = 0.0 if inside else 1.0
        lower = upper = mean
    else:
        se = sd / math.sqrt(n)
        p_lower = float(stats.t.sf((mean + margin) / se, n - 1))
        p_upper = float(stats.t.cdf((mean - margin) / se, n - 1))
        half = float(stats.t.ppf(1 - alpha, n - 1)) * se
        lower, upper = mean - half, mean + half
    p = max(p_lower, p_upper)
    return {"diff": mean, "lower": lower, "upper": upper, "p_lower": p_lower, "p_upper": p_upper, "p": p,
            "equivalent": bool(p < alpha), "margin": float(margin), "n": int(n)}


def minimum_detectable_effect(n: int, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true mean difference a two-sided paired t-test on ``n`` seeds detects with ``power``.

    ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)``, ``sd`` the standard
    deviation of the paired differences: the size below which "not
    distinguishable" says nothing about the absence of an effect.
    """
    if not (isinstance(n, (int, np.integer)) and n >= 2):
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be a finite number >= 0, got {sd!r}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must lie in (0, 1)")
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n))
