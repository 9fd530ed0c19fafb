"""Figures of a fitted run: rank and trace plots, PPC per group, trajectories, dose-response.

ArviZ draws the rank/trace plots and the per-group PPC density overlays; the trajectory bands
(observed data, censored points marked, predicted median with 50%/90% bands of the posterior
predictive at the observation times) and the dose-response summary are drawn here with
matplotlib. Used by the command line (``cytofactory run``) only.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from bayes.models import HierarchicalModel  # noqa: E402
from bayes.models.hierarchical import observed_dim, observed_name  # noqa: E402

log = logging.getLogger("bayes.report")
MAX_SUBJECT_PANELS = 48
MAX_RANK_VARIABLES = 16


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _population(model: HierarchicalModel, tree: xr.DataTree) -> list[str]:
    from bayes.workflow.run import population_variables

    names = population_variables(model)
    return [n for n in names if n in tree["posterior"].data_vars][:MAX_RANK_VARIABLES]


def write_run_figures(
    tree: xr.DataTree, model: HierarchicalModel, out: Path, dose_response_day: float | None
) -> list[Path]:
    """Write every run figure to ``out`` and return the paths (figures that fail are logged)."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        ("rank plot", lambda: plot_rank(tree, model, out / "rank.png")),
        ("trace plot", lambda: plot_trace(tree, model, out / "trace.png")),
    ]
    if "posterior_predictive" in tree.children:
        for analyte in model.spec.observables:
            jobs.append((f"PPC {analyte}", lambda a=analyte: plot_ppc_groups(tree, model, a, out)))
            jobs.append((f"ArviZ PPC {analyte}", lambda a=analyte: plot_ppc_arviz(tree, a, out)))
            jobs.append(
                (
                    f"trajectories {analyte}",
                    lambda a=analyte: plot_trajectories(tree, model, a, out),
                ),
            )
        if dose_response_day is not None:
            jobs.append(
                ("dose-response", lambda: plot_dose_response(tree, model, dose_response_day, out)),
            )
    paths: list[Path] = []
    for name, job in jobs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made = job()
        except Exception as exc:  # one figure failing must not lose the run
            log.warning("figure %s failed: %s: %s", name, type(exc).__name__, exc)
            continue
        paths += made if isinstance(made, list) else ([made] if made is not None else [])
    plt.close("all")
    return paths


def plot_rank(tree: xr.DataTree, model: HierarchicalModel, path: Path) -> Path:
    """Rank plots (ArviZ ``plot_rank``) of the population parameters."""
    import arviz as az

    pc = az.plot_rank(tree, var_names=_population(model, tree), backend="matplotlib")
    pc.savefig(path, dpi=80)
    return path


def plot_trace(tree: xr.DataTree, model: HierarchicalModel, path: Path) -> Path:
    """Trace plots with marginal densities (ArviZ ``plot_trace_dist``)."""
    import arviz as az

    pc = az.plot_trace_dist(tree, var_names=_population(model, tree), backend="matplotlib")
    pc.savefig(path, dpi=70)
    return path


def plot_ppc_arviz(tree: xr.DataTree, analyte: str, out: Path) -> Path:
    """ArviZ ``plot_ppc_dist`` of one observed variable over all groups."""
    import arviz as az

    pc = az.plot_ppc_dist(tree, var_names=[observed_name(analyte)], backend="matplotlib")
    path = out / f"ppc_arviz_{_slug(analyte)}.png"
    pc.savefig(path, dpi=80)
    return path


def _rows(model: HierarchicalModel, analyte: str) -> pd.DataFrame:
    rows = model.design.rows[model.design.rows["analyte"] == analyte].reset_index(drop=True)
    return rows.assign(group=model.design.groups[rows["subject_index"].to_numpy()])


def _predictive(tree: xr.DataTree, analyte: str) -> np.ndarray:
    """Posterior predictive draws on the model scale, shape ``(sample, observation)``."""
    array = tree["posterior_predictive"][observed_name(analyte)]
    return array.stack(sample=("chain", "draw")).transpose("sample", ...).values


def _observed_scale(model: HierarchicalModel, analyte: str, rows: pd.DataFrame) -> np.ndarray:
    error = model.spec.observables[analyte].error
    values = np.where(rows["censored"], rows["limit"], rows["value"])
    return error.transform(values)


def _group_order(model: HierarchicalModel) -> list[str]:
    return list(dict.fromkeys(model.design.groups))


def plot_ppc_groups(tree: xr.DataTree, model: HierarchicalModel, analyte: str, out: Path) -> Path:
    """Posterior predictive densities against the observed data, one panel per group.

    Each panel overlays 50 posterior-predictive draws (thin lines) on the observed values' density
    (thick), on the error model's scale; censored observations enter at their limit.
    """
    rows = _rows(model, analyte)
    draws = _predictive(tree, analyte)
    observed = _observed_scale(model, analyte, rows)
    groups = _group_order(model)
    n = len(groups)
    cols = min(3, n)
    fig, axes = plt.subplots(
        math.ceil(n / cols),
        cols,
        figsize=(max(6.0, 4.2 * cols), 3 * math.ceil(n / cols)),
        squeeze=False,
    )
    rng = np.random.default_rng(0)
    picks = rng.choice(draws.shape[0], size=min(50, draws.shape[0]), replace=False)
    for ax, group in zip(axes.flat, groups, strict=False):
        mask = (rows["group"] == group).to_numpy()
        finite = np.isfinite(observed[mask])
        if mask.sum() < 2 or finite.sum() < 2:
            ax.set_title(f"{group} (too few observations)")
            continue
        lo, hi = np.nanquantile(draws[:, mask], [0.005, 0.995])
        grid = np.linspace(
            min(lo, observed[mask][finite].min()), max(hi, observed[mask][finite].max()), 200
        )
        for i in picks:
            ax.plot(grid, _kde(draws[i, mask], grid), color="tab:blue", alpha=0.15, lw=0.8)
        ax.plot(grid, _kde(observed[mask][finite], grid), color="black", lw=2, label="observed")
        ax.set_title(f"{group} (n={int(mask.sum())})")
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    scale = model.spec.observables[analyte].error.scale
    fig.supxlabel(f"{'log ' if scale == 'log' else ''}{analyte}")
    fig.suptitle(f"Posterior predictive check: {analyte} (blue: 50 predictive draws)")
    fig.tight_layout()
    path = out / f"ppc_{_slug(analyte)}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    values = values[np.isfinite(values)]
    sd = np.std(values)
    bandwidth = 1.06 * (sd if sd > 0 else 1.0) * len(values) ** (-1 / 5)
    z = (grid[:, None] - values[None, :]) / bandwidth
    return np.exp(-0.5 * z**2).sum(axis=1) / (len(values) * bandwidth * math.sqrt(2 * math.pi))


def plot_trajectories(tree: xr.DataTree, model: HierarchicalModel, analyte: str, out: Path) -> Path:
    """Per-subject observed data with posterior predictive median and 50%/90% bands.

    Bands are of the posterior predictive (new observations) at each observed time; censored
    observations are drawn as open triangles at their limit.
    """
    rows = _rows(model, analyte)
    draws = _predictive(tree, analyte)
    error = model.spec.observables[analyte].error
    natural = np.exp(draws) if error.scale == "log" else draws
    q05, q25, q50, q75, q95 = np.quantile(natural, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    subjects = list(dict.fromkeys(rows["subject_index"]))[:MAX_SUBJECT_PANELS]
    cols = min(6, len(subjects))
    nrows = math.ceil(len(subjects) / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(2.6 * cols, 2.2 * nrows), squeeze=False, sharex=True
    )
    for ax, index in zip(axes.flat, subjects, strict=False):
        mask = (rows["subject_index"] == index).to_numpy()
        t = rows.loc[mask, "time"].to_numpy()
        order = np.argsort(t, kind="stable")
        t = t[order]
        pick = np.flatnonzero(mask)[order]
        ax.fill_between(t, q05[pick], q95[pick], color="tab:blue", alpha=0.2, lw=0)
        ax.fill_between(t, q25[pick], q75[pick], color="tab:blue", alpha=0.35, lw=0)
        ax.plot(t, q50[pick], color="tab:blue", lw=1)
        censored = rows.loc[mask, "censored"].to_numpy()[order]
        values = rows.loc[mask, "value"].to_numpy()[order]
        limits = rows.loc[mask, "limit"].to_numpy()[order]
        ax.plot(t[~censored], values[~censored], "o", color="black", ms=3)
        if censored.any():
            ax.plot(t[censored], limits[censored], "v", mfc="none", color="tab:red", ms=5)
        if error.scale == "log":
            ax.set_yscale("log")
        subject = model.design.subjects[index]
        ax.set_title(f"{subject} ({model.design.groups[index]})", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(subjects) :]:
        ax.set_visible(False)
    n_all = rows["subject_index"].nunique()
    shown = f" (first {len(subjects)} of {n_all} subjects)" if n_all > len(subjects) else ""
    fig.suptitle(
        f"{analyte}: data (dots; red triangles = censored at limit), posterior "
        f"predictive median, 50% and 90% bands{shown}",
        fontsize=9,
    )
    fig.supxlabel("time (day)", fontsize=8)
    fig.tight_layout()
    path = out / f"trajectories_{_slug(analyte)}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def dose_response_table(
    tree: xr.DataTree, model: HierarchicalModel, day: float, tolerance: float = 1.0
) -> pd.DataFrame | None:
    """Predicted and observed change of the first analyte from baseline to ``day``, per group.

    For every subject observed within ``tolerance`` days of ``day`` and at its first time, the
    change is ``pred(day) - pred(first)`` of the ``pred_<analyte>`` deterministic (on the error
    model's scale; a log ratio for log-scale analytes); the group's posterior is the mean over
    its subjects. Returns None when no subject has such an observation.
    """
    analyte = next(iter(model.spec.observables))
    name = f"pred_{analyte}"
    group = next(
        (
            g
            for g in ("posterior", "posterior_predictive")
            if g in tree.children and name in tree[g].data_vars
        ),
        None,
    )
    if group is None:
        return None
    rows = _rows(model, analyte)
    pred = (
        tree[group][name]
        .stack(sample=("chain", "draw"))
        .transpose(observed_dim(analyte), "sample")
        .values
    )
    observed = _observed_scale(model, analyte, rows)
    records = []
    groups = model.study.groups.set_index("group") if not model.study.groups.empty else None
    for group in _group_order(model):
        changes, observed_changes = [], []
        for index in sorted(set(rows.loc[rows["group"] == group, "subject_index"])):
            sub = rows[rows["subject_index"] == index]
            near = sub[(sub["time"] - day).abs() <= tolerance]
            if near.empty:
                continue
            first = sub.index[np.argmin(sub["time"].to_numpy())]
            at_day = near.index[np.argmin((near["time"] - day).abs().to_numpy())]
            changes.append(pred[at_day] - pred[first])
            observed_changes.append(observed[at_day] - observed[first])
        if not changes:
            continue
        mean_change = np.mean(changes, axis=0)
        dose = np.nan
        if groups is not None and group in groups.index:
            dose = float(groups.loc[group, "dose"])
        records.append(
            {
                "group": group,
                "dose": dose,
                "subjects": len(changes),
                "median": float(np.median(mean_change)),
                "q5": float(np.quantile(mean_change, 0.05)),
                "q95": float(np.quantile(mean_change, 0.95)),
                "observed_mean": float(np.nanmean(observed_changes)),
            }
        )
    if not records:
        return None
    table = pd.DataFrame(records)
    table.attrs.update(analyte=analyte, scale=model.spec.observables[analyte].error.scale, day=day)
    return table


def plot_dose_response(
    tree: xr.DataTree, model: HierarchicalModel, day: float, out: Path
) -> list[Path] | None:
    """Dose-response at ``day``: posterior median and 90% interval of the group-mean change."""
    table = dose_response_table(tree, model, day)
    if table is None:
        log.info("dose-response: no subject observed near day %g; figure skipped", day)
        return None
    log_scale = table.attrs["scale"] == "log"
    factor = (lambda v: 100 * (np.exp(v) - 1)) if log_scale else (lambda v: v)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    x = np.arange(len(table))
    median = factor(table["median"].to_numpy())
    ax.errorbar(
        x,
        median,
        yerr=[median - factor(table["q5"].to_numpy()), factor(table["q95"].to_numpy()) - median],
        fmt="o",
        color="tab:blue",
        capsize=4,
        label="model: group mean (90% interval)",
    )
    ax.plot(
        x,
        factor(table["observed_mean"].to_numpy()),
        "x",
        color="black",
        ms=8,
        label="data: group mean",
    )
    labels = [
        f"{g}\n{d:g}" if np.isfinite(d) else g
        for g, d in zip(table["group"], table["dose"], strict=True)
    ]
    ax.set_xticks(x, labels, fontsize=7)
    ax.axhline(0, color="grey", lw=0.8)
    unit = "% change" if log_scale else "change"
    ax.set_ylabel(f"{table.attrs['analyte']}: {unit} from first observation")
    ax.set_title(f"Dose-response at day {day:g} (group, nominal dose)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "dose_response.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    csv = out / "dose_response.csv"
    table.to_csv(csv, index=False)
    return [path]
