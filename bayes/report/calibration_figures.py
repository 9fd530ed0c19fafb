"""Figures of a calibration run: rank histograms and ECDF differences with simultaneous bands.

- Rank histograms (Talts et al. 2018, figure 1 style): counts per bin of the ranks with the
  central 99% range of a bin count under uniformity (binomial).
- ECDF difference (Säilynoja, Bürkner & Vehtari 2022, Stat Comput 32:32): the ECDF of the
  randomised PIT minus the uniform CDF, with ArviZ's simultaneous 95% band
  (``arviz_stats.ecdf_utils.ecdf_pit``, simulation method): under calibration the whole curve
  stays inside the band with probability 0.95.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from bayes.inference.sbc import randomized_pit, rank_bins

BAND_PROBABILITY = 0.95
BAND_SIMULATIONS = 1000
BAND_SEED = 214  # ArviZ's own default seed for the band simulation


def _grid(n_panels: int) -> tuple[Figure, np.ndarray]:
    columns = min(4, max(n_panels, 1))
    rows = math.ceil(max(n_panels, 1) / columns)
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat[n_panels:]:
        axis.set_visible(False)
    return figure, axes.flat


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    figure.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


def rank_histograms(ranks: pd.DataFrame, n_rank_draws: int, path: Path, title: str) -> Path:
    """Plot one rank histogram per parameter (columns ``parameter, rank``) to ``path``."""
    parameters = list(dict.fromkeys(ranks["parameter"]))
    figure, axes = _grid(len(parameters))
    for axis, parameter in zip(axes, parameters, strict=False):
        values = ranks.loc[ranks["parameter"] == parameter, "rank"].dropna().to_numpy()
        bins = rank_bins(values.size, n_rank_draws)
        edges = np.linspace(0, n_rank_draws + 1, bins + 1)
        expected = values.size / bins
        low, high = stats.binom.ppf([0.005, 0.995], values.size, 1 / bins)
        axis.axhspan(low, high, color="0.85", zorder=0, label="99% range if uniform")
        axis.axhline(expected, color="0.4", lw=1)
        axis.hist(values, bins=edges, color="tab:blue", edgecolor="white", zorder=1)
        axis.set_title(parameter, fontsize=9)
        axis.set_xlim(0, n_rank_draws + 1)
        axis.set_xlabel("rank", fontsize=8)
    figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def ecdf_differences(ranks: pd.DataFrame, n_rank_draws: int, path: Path, title: str) -> Path:
    """Plot ECDF(PIT) - uniform CDF with ArviZ's simultaneous 95% band per parameter."""
    from arviz_stats.ecdf_utils import ecdf_pit

    parameters = list(dict.fromkeys(ranks["parameter"]))
    figure, axes = _grid(len(parameters))
    for axis, parameter in zip(axes, parameters, strict=False):
        values = ranks.loc[ranks["parameter"] == parameter, "rank"].dropna().to_numpy()
        if values.size < 2:
            axis.set_title(f"{parameter} (too few fits)", fontsize=9)
            continue
        pit = randomized_pit(values, n_rank_draws)
        x, ecdf, lower, upper = ecdf_pit(
            pit, BAND_PROBABILITY, BAND_SIMULATIONS, rng=np.random.default_rng(BAND_SEED)
        )
        outside = np.any((ecdf < lower) | (ecdf > upper))
        axis.fill_between(x, lower - x, upper - x, step="post", color="0.85")
        axis.step(x, ecdf - x, where="post", color="tab:red" if outside else "tab:blue")
        axis.axhline(0, color="0.4", lw=0.8)
        axis.set_title(parameter + (" (outside band)" if outside else ""), fontsize=9)
        axis.set_xlabel("PIT", fontsize=8)
    figure.suptitle(f"{title}: ECDF difference, simultaneous 95% band", fontsize=10)
    return _save(figure, path)


def write_calibration_figures(
    ranks: pd.DataFrame, n_rank_draws: int, folder: Path, title: str
) -> list[Path]:
    """Write ``rank_histograms.png`` and ``ecdf_difference.png`` of the given ranks."""
    return [
        rank_histograms(ranks, n_rank_draws, folder / "rank_histograms.png", title),
        ecdf_differences(ranks, n_rank_draws, folder / "ecdf_difference.png", title),
    ]
