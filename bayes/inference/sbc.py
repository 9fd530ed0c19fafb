"""Simulation-based calibration (SBC) statistics for any PyMC model.

Talts et al. (2018, arXiv:1804.06788): if parameters are drawn from the prior, data simulated
from them, and the posterior computed exactly, the rank of each true value among ``L``
independent posterior draws is uniform on ``0..L``. Departures reveal a miscalibrated fit
(a biased or over-/under-dispersed posterior, a prior in the fit that differs from the one the
data came from, a sampler that does not converge).

This module turns one fit into per-element statistics (:func:`replicate_statistics`) and many
replicates into tables: rank uniformity (:func:`uniformity_table`), central-interval coverage
(:func:`coverage_table`) and parameter recovery (:func:`recovery_table`). It knows nothing of
the model that produced the draws.

Choices (documented in the README, section *Calibration*):

- Ranks are over ``L`` draws taken evenly spaced from the pooled chains (thinning, so that the
  draws are roughly independent; Talts et al. section 5). ``L = 99`` by default gives 100
  possible ranks, which split evenly into 5, 10 or 20 histogram bins.
- Uniformity is tested on the randomised PIT ``(rank + U) / (L + 1)`` (exactly uniform on
  ``(0, 1)`` under calibration; ``U`` from a fixed seed) with ArviZ's POT-C test (pointwise
  order-statistic test with Cauchy combination, Tesso et al. 2026, the default of
  ``arviz_plots.plot_ecdf_pit``) and with Pearson's chi-square on binned ranks.
- A row is flagged when a p-value falls below ``alpha / m`` (Bonferroni over the ``m`` rows of
  its family, so the family-wise false-alarm rate stays at ``alpha``).
- Coverage is the fraction of replicates whose central ``q`` posterior interval (quantiles of
  all kept draws) contains the true value; a cell is flagged when the nominal ``q`` lies
  outside the Clopper-Pearson interval at confidence ``1 - alpha / m`` (same correction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

CENTRAL_LEVELS = (0.5, 0.8, 0.9, 0.95)
"""Central interval probabilities of the coverage table (issue 8)."""
DEFAULT_RANK_DRAWS = 99
DEFAULT_ALPHA = 0.05
PIT_JITTER_SEED = 20180418  # fixed: the randomised PIT is reproducible (date of Talts et al.)


def element_labels(name: str, array: xr.DataArray) -> list[str]:
    """Return one label per scalar element of a posterior variable: ``name[coord,...]``.

    Parameters
    ----------
    name : str
        Variable name.
    array : xarray.DataArray
        The variable without its sample dimensions.
    """
    if array.ndim == 0:
        return [name]
    coords = [
        array.coords[d].values if d in array.coords else range(array.sizes[d]) for d in array.dims
    ]
    grid = np.stack(np.meshgrid(*[np.arange(len(c)) for c in coords], indexing="ij"), -1)
    return [
        f"{name}[{','.join(str(coords[k][i]) for k, i in enumerate(index))}]"
        for index in grid.reshape(-1, array.ndim)
    ]


def thinned_positions(n_total: int, n_rank_draws: int) -> np.ndarray:
    """Return ``n_rank_draws`` positions spread evenly over ``n_total`` pooled draws.

    Raises
    ------
    ValueError
        If fewer draws were kept than ranks need.
    """
    if n_rank_draws > n_total:
        raise ValueError(
            f"ranks need {n_rank_draws} posterior draws but the fit kept {n_total}; "
            "raise draws x chains or lower the rank draws"
        )
    return np.linspace(0, n_total - 1, n_rank_draws).round().astype(int)


def quantile_levels(levels: Sequence[float] = CENTRAL_LEVELS) -> list[float]:
    """Return the lower and upper quantiles of the central intervals, sorted."""
    return sorted({q for level in levels for q in ((1 - level) / 2, (1 + level) / 2)})


def replicate_statistics(
    posterior: xr.Dataset,
    truth: Mapping[str, np.ndarray],
    n_rank_draws: int = DEFAULT_RANK_DRAWS,
    levels: Sequence[float] = CENTRAL_LEVELS,
) -> dict[str, np.ndarray]:
    """Return per-element statistics of one fit against its true parameter values.

    Parameters
    ----------
    posterior : xarray.Dataset
        Posterior draws with dims ``(chain, draw, ...)``.
    truth : mapping
        Variable name -> true value (shape of one draw).
    n_rank_draws : int
        ``L``: draws (thinned) among which the rank is taken.
    levels : sequence of float
        Central interval probabilities whose quantiles are stored.

    Returns
    -------
    dict of str to numpy.ndarray
        ``parameter`` (labels), ``variable``, ``truth``, ``rank`` (0..L), ``mean``, ``sd``,
        and ``q<p>`` for every quantile of :func:`quantile_levels` (one entry per element).
    """
    quantiles = quantile_levels(levels)
    rows: dict[str, list] = {
        k: [] for k in ("parameter", "variable", "truth", "rank", "mean", "sd")
    }
    rows.update({quantile_key(q): [] for q in quantiles})
    for name, true_value in truth.items():
        array = posterior[name]
        draws = array.stack(__sample__=("chain", "draw")).transpose("__sample__", ...).values
        draws = draws.reshape(draws.shape[0], -1)
        true_flat = np.asarray(true_value, dtype=float).reshape(-1)
        if true_flat.size != draws.shape[1]:
            raise ValueError(
                f"{name}: true value has {true_flat.size} elements, posterior {draws.shape[1]}"
            )
        thinned = draws[thinned_positions(draws.shape[0], n_rank_draws)]
        labels = element_labels(name, array.isel(chain=0, draw=0, drop=True))
        rows["parameter"] += labels
        rows["variable"] += [name] * len(labels)
        rows["truth"] += list(true_flat)
        rows["rank"] += list((thinned < true_flat).sum(axis=0))
        rows["mean"] += list(draws.mean(axis=0))
        rows["sd"] += list(draws.std(axis=0, ddof=1))
        for q, values in zip(quantiles, np.quantile(draws, quantiles, axis=0), strict=True):
            rows[quantile_key(q)] += list(values)
    return {
        key: np.asarray(values, dtype=str if key in ("parameter", "variable") else float)
        for key, values in rows.items()
    }


def quantile_key(q: float) -> str:
    """Return the column name of quantile ``q`` (``q0.025``)."""
    return f"q{q:.4g}"


def randomized_pit(ranks: np.ndarray, n_rank_draws: int, seed: int = PIT_JITTER_SEED) -> np.ndarray:
    """Map ranks in ``0..L`` to ``(rank + U) / (L + 1)``, uniform on (0, 1) under calibration."""
    ranks = np.asarray(ranks, dtype=float)
    jitter = np.random.default_rng(seed).uniform(size=ranks.shape)
    return (ranks + jitter) / (n_rank_draws + 1)


def rank_bins(n_replicates: int, n_rank_draws: int) -> int:
    """Return the number of histogram bins: about 5+ expected ranks per bin, at most 20.

    Bins are equal-width on ``0..L``; with ``L + 1`` divisible by the bin count every bin holds
    the same number of possible ranks (``L = 99``: 5, 10 or 20 bins).
    """
    target = max(2, min(20, n_replicates // 5))
    candidates = [b for b in range(2, target + 1) if (n_rank_draws + 1) % b == 0]
    return max(candidates) if candidates else target


def chi_square_p(ranks: np.ndarray, n_rank_draws: int, bins: int) -> tuple[float, float]:
    """Return Pearson's chi-square statistic and p-value of binned ranks against uniform."""
    ranks = np.asarray(ranks, dtype=float)
    ranks = ranks[np.isfinite(ranks)]
    if ranks.size == 0:
        return np.nan, np.nan
    edges = np.linspace(0, n_rank_draws + 1, bins + 1)
    counts, _ = np.histogram(ranks, bins=edges)
    expected = ranks.size * np.diff(edges) / (n_rank_draws + 1)
    result = stats.chisquare(counts, expected)
    return float(result.statistic), float(result.pvalue)


def pot_c_p(pit: np.ndarray) -> float:
    """Return ArviZ's POT-C uniformity p-value of PIT values (NaN without values)."""
    from arviz_stats.base import array_stats

    pit = np.asarray(pit, dtype=float)
    pit = pit[np.isfinite(pit)]
    if pit.size < 2:
        return np.nan
    return float(array_stats.uniformity_test(pit, method="pot_c")[0])


def uniformity_table(
    ranks: pd.DataFrame,
    n_rank_draws: int,
    families: Mapping[str, str],
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Test each parameter's ranks for uniformity.

    Parameters
    ----------
    ranks : pandas.DataFrame
        Columns ``replicate, parameter, variable, rank`` (NaN ranks are left out).
    n_rank_draws : int
        ``L``.
    families : mapping
        Variable -> family name (e.g. ``population``, ``subject``); Bonferroni is per family.
    alpha : float
        Family-wise false-alarm rate.

    Returns
    -------
    pandas.DataFrame
        ``parameter, variable, family, n, bins, chi2, p_chi2, p_pot_c, alpha_adjusted,
        flagged, mean_rank_fraction``; ``flagged`` when either p-value < ``alpha_adjusted``.
    """
    rows = []
    for (parameter, variable), group in ranks.groupby(["parameter", "variable"], sort=False):
        values = group.sort_values("replicate")["rank"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        bins = rank_bins(values.size, n_rank_draws)
        chi2, p_chi2 = chi_square_p(values, n_rank_draws, bins)
        rows.append(
            {
                "parameter": parameter,
                "variable": variable,
                "family": families.get(variable, "other"),
                "n": values.size,
                "bins": bins,
                "chi2": chi2,
                "p_chi2": p_chi2,
                "p_pot_c": pot_c_p(randomized_pit(values, n_rank_draws)),
                "mean_rank_fraction": float(np.mean(values) / n_rank_draws)
                if values.size
                else np.nan,
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    size = table.groupby("family")["parameter"].transform("count")
    table["alpha_adjusted"] = alpha / size
    smallest = table[["p_chi2", "p_pot_c"]].min(axis=1)
    table["flagged"] = smallest < table["alpha_adjusted"]
    return table


def coverage_table(
    replicates: pd.DataFrame,
    levels: Sequence[float] = CENTRAL_LEVELS,
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Return the central-interval coverage of each parameter at each level.

    Parameters
    ----------
    replicates : pandas.DataFrame
        One row per replicate and parameter with ``parameter, truth`` and the quantile columns
        of :func:`quantile_levels` (rows with NaN quantiles are left out).
    levels : sequence of float
        Nominal probabilities.
    alpha : float
        Family-wise error rate of the flags (Bonferroni over all cells).

    Returns
    -------
    pandas.DataFrame
        ``parameter, level, n, covered, coverage, ci_low, ci_high, flagged``: the
        Clopper-Pearson interval is at confidence ``1 - alpha / cells``.
    """
    rows = []
    for parameter, group in replicates.groupby("parameter", sort=False):
        for level in levels:
            low = group[quantile_key((1 - level) / 2)].to_numpy(dtype=float)
            high = group[quantile_key((1 + level) / 2)].to_numpy(dtype=float)
            truth = group["truth"].to_numpy(dtype=float)
            valid = np.isfinite(low) & np.isfinite(high)
            inside = (truth[valid] >= low[valid]) & (truth[valid] <= high[valid])
            rows.append(
                {
                    "parameter": parameter,
                    "level": level,
                    "n": int(valid.sum()),
                    "covered": int(inside.sum()),
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    confidence = 1 - alpha / len(table)
    intervals = [
        _clopper_pearson(k, n, confidence)
        for k, n in zip(table["covered"], table["n"], strict=True)
    ]
    table["coverage"] = table["covered"] / table["n"].where(table["n"] > 0)
    table["ci_low"] = [low for low, _ in intervals]
    table["ci_high"] = [high for _, high in intervals]
    table["confidence"] = confidence
    table["flagged"] = (table["level"] < table["ci_low"]) | (table["level"] > table["ci_high"])
    return table


def _clopper_pearson(covered: int, n: int, confidence: float) -> tuple[float, float]:
    if n == 0:
        return np.nan, np.nan
    interval = stats.binomtest(int(covered), int(n)).proportion_ci(
        confidence_level=confidence, method="exact"
    )
    return float(interval.low), float(interval.high)


def recovery_table(
    replicates: pd.DataFrame,
    prior_widths: Mapping[str, float],
    log_scale: Mapping[str, bool],
    level: float = 0.9,
    estimable_ratio: float = 0.5,
    prior_dominated_ratio: float = 0.9,
) -> pd.DataFrame:
    """Return bias, RMSE, coverage and posterior/prior width per parameter, with a verdict.

    Parameters
    ----------
    replicates : pandas.DataFrame
        One row per replicate and parameter: ``parameter, truth, mean`` and quantile columns.
    prior_widths : mapping
        Parameter -> width of its central ``level`` prior interval (on the log scale where
        ``log_scale``).
    log_scale : mapping
        Parameter -> whether widths are compared on the log scale (positive parameters).
    level : float
        Interval probability of the widths and of the reported coverage.
    estimable_ratio, prior_dominated_ratio : float
        Median posterior/prior width ratio below which the design "estimates" the parameter and
        above which the posterior is "prior-dominated" (in between: "weakly informed"). A ratio
        of 0.5 means a posterior variance a quarter of the prior's (posterior contraction 0.75,
        Schad, Betancourt & Vasishth 2021, Psychol Methods 26:103).

    Returns
    -------
    pandas.DataFrame
        ``parameter, n, truth_mean, posterior_mean, bias, relative_bias, rmse, coverage,
        width_ratio, verdict``.
    """
    low_key, high_key = quantile_key((1 - level) / 2), quantile_key((1 + level) / 2)
    rows = []
    for parameter, group in replicates.groupby("parameter", sort=False):
        group = group[np.isfinite(group["mean"].to_numpy(dtype=float))]
        truth = group["truth"].to_numpy(dtype=float)
        mean = group["mean"].to_numpy(dtype=float)
        low, high = group[low_key].to_numpy(dtype=float), group[high_key].to_numpy(dtype=float)
        on_log = bool(log_scale.get(parameter, False)) and np.all(low > 0)
        widths = np.log(high) - np.log(low) if on_log else high - low
        ratio = float(np.median(widths) / prior_widths[parameter]) if truth.size else np.nan
        error = mean - truth
        rows.append(
            {
                "parameter": parameter,
                "n": truth.size,
                "truth_mean": float(np.mean(truth)) if truth.size else np.nan,
                "posterior_mean": float(np.mean(mean)) if truth.size else np.nan,
                "bias": float(np.mean(error)) if truth.size else np.nan,
                "relative_bias": float(np.mean(error / np.abs(truth)))
                if truth.size and np.all(truth != 0)
                else np.nan,
                "rmse": float(np.sqrt(np.mean(error**2))) if truth.size else np.nan,
                f"coverage_{level:g}": float(np.mean((truth >= low) & (truth <= high)))
                if truth.size
                else np.nan,
                "width_scale": "log" if on_log else "natural",
                "width_ratio": ratio,
                "verdict": _recovery_verdict(ratio, estimable_ratio, prior_dominated_ratio),
            }
        )
    return pd.DataFrame(rows)


def _recovery_verdict(ratio: float, estimable: float, prior_dominated: float) -> str:
    if not np.isfinite(ratio):
        return "no successful fits"
    if ratio < estimable:
        return "estimable"
    if ratio < prior_dominated:
        return "weakly informed"
    return "not estimable (prior-dominated)"


def central_width(values: np.ndarray, level: float, log: bool) -> float:
    """Return the width of the central ``level`` interval of draws (of their log if ``log``)."""
    values = np.asarray(values, dtype=float).reshape(-1)
    if log:
        values = np.log(values)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(high - low)
