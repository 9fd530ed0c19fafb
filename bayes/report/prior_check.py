"""Figures of the prior predictive check (used by ``cytofactory priors check``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

BANDS = ((0.05, 0.95, 0.2), (0.25, 0.75, 0.4))


def plot_prior_predictive(check: xr.Dataset, variable: str, ylabel: str, path: Path) -> Path:
    """Draw median and 50%/90% prior predictive bands per group on a log axis; save as PNG."""
    groups = list(check["group"].values)
    figure = Figure(figsize=(3.0 * len(groups), 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    days = check["day"].values
    for axis, group in zip(axes, groups, strict=True):
        values = check[variable].sel(group=group).values
        for low, high, alpha in BANDS:
            axis.fill_between(
                days,
                np.quantile(values, low, axis=0),
                np.quantile(values, high, axis=0),
                color="tab:blue",
                alpha=alpha,
                linewidth=0,
            )
        axis.plot(days, np.median(values, axis=0), color="tab:blue")
        axis.set_yscale("log")
        axis.set_title(group, fontsize=10)
        axis.set_xlabel("day")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    figure.suptitle(
        f"prior predictive ({check.sizes['draw']} draws, prior set {check.attrs.get('prior_set')})"
        ": median, 50% and 90% bands"
    )
    figure.savefig(path, dpi=110)
    return path


def write_prior_check(check: xr.Dataset, table, priors_table, out: Path) -> list[Path]:
    """Write the prior check's NetCDF, CSV tables and figures to ``out``; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("plausibility.csv", table), ("priors.csv", priors_table)):
        frame.to_csv(out / name, index=False)
        written.append(out / name)
    check.to_netcdf(out / "prior_predictive.nc")
    written.append(out / "prior_predictive.nc")
    figures = (
        ("burden", "tumour burden / baseline", "prior_predictive_burden.png"),
        ("il2_local", "local IL-2 (ng/mL)", "prior_predictive_il2_local.png"),
        ("il2_serum", "serum IL-2 (ng/mL)", "prior_predictive_il2_serum.png"),
    )
    for variable, label, name in figures:
        written.append(plot_prior_predictive(check, variable, label, out / name))
    return written
