"""Data summary for the command line: tables and per-subject trajectory figures.

Used by ``cytofactory data summarize``; the core library never imports the report layer.
Figures are drawn on an Agg canvas (no display needed).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bayes.data.study import Study

MAIN_ANALYTES = ("tumour_volume", "tumor_volume")


def summary_tables(study: Study) -> dict[str, pd.DataFrame]:
    """Return the summary tables: subjects per group, per-analyte counts, censoring, exclusions.

    Parameters
    ----------
    study : Study
        The data to summarise.

    Returns
    -------
    dict of str to DataFrame
        Keys ``subjects_per_group``, ``analytes``, ``censored``, ``excluded``.

    """
    obs = study.observations
    per_group = obs.groupby("group", sort=False)["subject"].nunique().rename("subjects")
    groups = study.groups.merge(per_group.reset_index(), on="group", how="left")
    analytes = obs.groupby("analyte", sort=False).agg(
        unit=("unit", "first"),
        observations=("value", "size"),
        subjects=("subject", "nunique"),
        censored=("censored", "sum"),
        time_min_day=("time", "min"),
        time_max_day=("time", "max"),
    )
    censored = obs.groupby(["group", "analyte"], sort=False).agg(
        observations=("censored", "size"), censored=("censored", "sum")
    )
    return {
        "subjects_per_group": groups,
        "analytes": analytes.reset_index(),
        "censored": censored.reset_index(),
        "excluded": study.excluded,
    }


def main_analyte(study: Study) -> str:
    """Return tumour volume if measured, else the analyte with the most observations."""
    counts = study.observations["analyte"].value_counts()
    for name in MAIN_ANALYTES:
        if name in counts:
            return name
    return str(counts.index[0])


def plot_trajectories(study: Study, analyte: str, path: str | Path) -> Path:
    """Draw per-subject trajectories of ``analyte``, one panel per group, log y scale.

    Censored observations are drawn at their limit as open downward triangles; values <= 0
    cannot be shown on a log axis and are counted in the panel title.

    Returns
    -------
    Path
        The written PNG.

    """
    obs = study.observations[study.observations["analyte"] == analyte]
    groups = list(dict.fromkeys(obs["group"]))
    ncols = min(3, len(groups))
    nrows = int(np.ceil(len(groups) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, group in zip(axes, groups, strict=False):
        _panel(ax, obs[obs["group"] == group], group)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    unit = obs["unit"].iloc[0] if len(obs) else ""
    fig.suptitle(f"{study.name}: {analyte} [{unit}] per subject (open triangles: censored)")
    fig.supxlabel("time [day]")
    fig.savefig(path, dpi=110)
    return Path(path)


def _panel(ax, obs: pd.DataFrame, group: str) -> None:
    n_nonpositive = 0
    for _, rows in obs.groupby("subject", sort=False):
        measured = rows[~rows["censored"]]
        positive = measured[measured["value"] > 0]
        n_nonpositive += len(measured) - len(positive)
        line = ax.plot(positive["time"], positive["value"], marker="o", ms=3, lw=1, alpha=0.8)
        cens = rows[rows["censored"]]
        if len(cens):
            color = line[0].get_color()
            ax.plot(cens["time"], cens["limit"], ls="none", marker="v", mfc="none", color=color)
    n_subjects = obs["subject"].nunique()
    extra = f", {n_nonpositive} values <= 0 not shown" if n_nonpositive else ""
    ax.set_title(f"{group} (n={n_subjects}{extra})", fontsize=9)
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both", lw=0.4)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_summary(study: Study, out_dir: str | Path) -> list[Path]:
    """Write ``summary.md``, the summary CSVs and the trajectory figures to ``out_dir``.

    ``trajectories.png`` shows the main analyte (tumour volume if present); every other analyte
    gets ``trajectories_<analyte>.png``.

    Returns
    -------
    list of Path
        Files written, in order.

    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = summary_tables(study)
    written = []
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv", index=False)
        written.append(out / f"{name}.csv")
    main = main_analyte(study)
    written.append(plot_trajectories(study, main, out / "trajectories.png"))
    for analyte in dict.fromkeys(study.observations["analyte"]):
        if analyte != main:
            path = out / f"trajectories_{_slug(analyte)}.png"
            written.append(plot_trajectories(study, analyte, path))
    (out / "summary.md").write_text(_markdown(study, tables, main), encoding="utf-8")
    return [out / "summary.md", *written]


def _markdown(study: Study, tables: dict[str, pd.DataFrame], main: str) -> str:
    excluded = tables["excluded"]
    reasons = excluded["reason"].value_counts()
    lines = [
        f"# Data summary: {study.name}",
        "",
        f"Source: {study.source}",
        "",
        study.summary_line(),
        "",
        "## Subjects per group",
        "",
        tables["subjects_per_group"].to_string(index=False),
        "",
        "## Analytes (time in day, values in the listed canonical unit)",
        "",
        tables["analytes"].to_string(index=False),
        "",
        "## Excluded rows (details in excluded.csv)",
        "",
        *(f"- {count} x {reason}" for reason, count in reasons.items()),
        "" if len(reasons) else "None.",
        "",
        f"Figure: trajectories.png ({main}, log scale; censored points at their limit).",
        "",
    ]
    return "\n".join(lines)
