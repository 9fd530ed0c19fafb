"""Figures and the HTML report of ``cytofactory translate`` (used by the command line only)."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bayes.report.html import image, page

__all__ = ["write_translation_report"]

_CAVITY_COLOURS = {"peritoneal": "tab:blue", "pleural": "tab:orange"}


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _colour(cavity: str) -> str:
    return _CAVITY_COLOURS.get(cavity, "tab:green")


def plot_fan_charts(timecourse: xr.Dataset, path: Path) -> Path:
    """Fan charts (median, 50% and 90% bands) of local and serum IL-2 for every scenario."""
    scenarios = list(timecourse["scenario"].values)
    columns = min(5, len(scenarios))
    rows = 2 * int(np.ceil(len(scenarios) / columns))
    figure = _figure(3.0 * columns, 2.4 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    days = timecourse["time"].values
    for index, scenario in enumerate(scenarios):
        one = timecourse.sel(scenario=scenario)
        for offset, variable in enumerate(("local", "serum")):
            axis = axes[2 * (index // columns) + offset, index % columns]
            q = one[variable].values
            colour = _colour(str(one["cavity"].values))
            axis.fill_between(days, q[0], q[4], color=colour, alpha=0.2, linewidth=0)
            axis.fill_between(days, q[1], q[3], color=colour, alpha=0.4, linewidth=0)
            axis.plot(days, q[2], color=colour)
            axis.set_yscale("log")
            axis.set_title(f"{scenario}: {variable}", fontsize=8)
            axis.tick_params(labelsize=7)
            axis.grid(alpha=0.3)
            if index % columns == 0:
                axis.set_ylabel("IL-2 (ng/mL)", fontsize=8)
    for index in range(len(scenarios), (rows // 2) * columns):
        for offset in range(2):
            axes[2 * (index // columns) + offset, index % columns].set_visible(False)
    figure.suptitle(
        "Predicted local (cavity) and serum IL-2: median, 50% and 90% of patients "
        "over posterior draws",
        fontsize=10,
    )
    figure.savefig(path, dpi=100)
    return path


def _by_cavity(exposure: xr.Dataset):
    """Yield (label, scenario names, total outputs) of plain dose series per cavity."""
    plain = ~exposure["effusion"].values & ~exposure["anti_pd1"].values
    for cavity in dict.fromkeys(exposure["cavity"].values):
        pick = plain & (exposure["cavity"].values == cavity)
        if not pick.any():
            continue
        names = exposure["scenario"].values[pick]
        doses = exposure["total_output_ug_per_day"].values[pick]
        order = np.argsort(doses)
        yield str(cavity), names[order], doses[order]


def plot_dose_exposure(exposure: xr.Dataset, path: Path) -> Path:
    """Median and 90% interval of exposures against total capsule output, per cavity."""
    variables = ("cmax_serum", "cmax_local", "time_above_effective", "tumour_effect")
    figure = _figure(3.2 * len(variables), 3.0)
    axes = figure.subplots(1, len(variables))
    for axis, variable in zip(axes, variables, strict=True):
        for cavity, names, doses in _by_cavity(exposure):
            values = exposure[variable].sel(scenario=list(names)).values
            flat = values.transpose(1, 0, 2).reshape(len(names), -1)
            q = np.quantile(flat, [0.05, 0.5, 0.95], axis=1)
            axis.fill_between(doses, q[0], q[2], color=_colour(cavity), alpha=0.25, linewidth=0)
            axis.plot(doses, q[1], "o-", color=_colour(cavity), label=cavity)
        axis.set_xscale("log")
        if variable.startswith("cmax"):
            axis.set_yscale("log")
        unit = exposure[variable].attrs.get("units", "")
        axis.set_title(f"{variable} ({unit})", fontsize=9)
        axis.set_xlabel("total output (ug/day)")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle("Dose-exposure: median and 90% predictive interval per patient", fontsize=10)
    figure.savefig(path, dpi=100)
    return path


def plot_dose_risk(exposure: xr.Dataset, risk: xr.Dataset, path: Path) -> Path:
    """Probability of exceeding each toxicity reference against total output, per cavity."""
    references = list(risk["reference"].values)
    figure = _figure(3.2 * len(references), 3.0)
    axes = figure.subplots(1, len(references), squeeze=False)[0]
    for axis, reference in zip(axes, references, strict=True):
        for cavity, names, doses in _by_cavity(exposure):
            share = risk["fraction_exceeding"].sel(reference=reference, scenario=list(names))
            q = np.quantile(share.values, [0.05, 0.95], axis=0)
            mean = risk["probability"].sel(reference=reference, scenario=list(names)).values
            axis.fill_between(doses, q[0], q[1], color=_colour(cavity), alpha=0.25, linewidth=0)
            axis.plot(doses, mean, "o-", color=_colour(cavity), label=cavity)
        value = float(risk["reference_value"].sel(reference=reference))
        unit = str(risk["reference_unit"].sel(reference=reference).values)
        axis.set_title(f"P(exceed {reference})\n{value:.3g} {unit}", fontsize=9)
        axis.set_xscale("log")
        axis.set_ylim(-0.02, 1.02)
        axis.set_xlabel("total output (ug/day)")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(
        "Dose-risk: probability a patient exceeds the reference; band = 90% "
        "interval of the share of patients over posterior draws",
        fontsize=10,
    )
    figure.savefig(path, dpi=100)
    return path


def plot_variance_decomposition(decomposition: xr.Dataset, path: Path) -> Path:
    """Stacked normalised variance shares of each source, per output and scenario."""
    outputs = list(decomposition["output"].values)
    sources = list(decomposition["source"].values)
    scenarios = list(decomposition["scenario"].values)
    figure = _figure(3.0 * len(outputs), 3.6)
    axes = figure.subplots(1, len(outputs), sharey=True)
    colours = dict(
        zip(sources, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"], strict=False)
    )
    positions = np.arange(len(scenarios))
    for axis, output in zip(axes, outputs, strict=True):
        bottom = np.zeros(len(scenarios))
        for source in sources:
            share = decomposition["normalised_share"].sel(output=output, source=source).values
            axis.bar(positions, share, bottom=bottom, color=colours[source], label=source)
            bottom += share
        axis.set_title(output, fontsize=9)
        axis.set_xticks(positions, scenarios, rotation=90, fontsize=6)
    axes[0].set_ylabel("share of variance")
    axes[-1].legend(fontsize=7, loc="upper right")
    figure.suptitle(
        "Which uncertainty source dominates: 1 - Var(fixed)/Var, normalised", fontsize=10
    )
    figure.savefig(path, dpi=100)
    return path


def plot_human_pk_check(check: pd.DataFrame, path: Path) -> Path:
    """Predicted medians and 90% intervals against the published ranges (i.v. bolus)."""
    ranged = check[check["published_low"].notna()]
    figure = _figure(3.0 * len(ranged), 2.8)
    axes = figure.subplots(1, len(ranged), squeeze=False)[0]
    for axis, row in zip(axes, ranged.itertuples(), strict=True):
        axis.axhspan(
            row.published_low, row.published_high, color="grey", alpha=0.3, label="published"
        )
        axis.errorbar(
            [0],
            [row.median],
            yerr=[[row.median - row.q05], [row.q95 - row.median]],
            fmt="o",
            color="tab:blue",
            label="predicted (90%)",
        )
        axis.set_xticks([])
        axis.set_title(row.quantity, fontsize=9)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.suptitle("Human i.v. bolus PK (aldesleukin) vs published values", fontsize=10)
    figure.savefig(path, dpi=100)
    return path


def _frame_html(frame: pd.DataFrame) -> str:
    return frame.to_html(
        index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="table", na_rep=""
    )


def _summary_wide(summary: pd.DataFrame) -> pd.DataFrame:
    rows = summary.assign(
        value=[
            f"{m:.3g} [{a:.3g}, {b:.3g}]"
            for m, a, b in zip(summary["q50"], summary["q05"], summary["q95"], strict=True)
        ]
    )
    exposures = rows[~rows["quantity"].str.startswith("p_exceed_")]
    return exposures.pivot(index="scenario", columns="quantity", values="value").reset_index()


def _risk_wide(summary: pd.DataFrame) -> pd.DataFrame:
    risk = summary[summary["quantity"].str.startswith("p_exceed_")]
    risk = risk.assign(value=[f"{m:.3f}" for m in risk["mean"]])
    return risk.pivot(index="scenario", columns="quantity", values="value").reset_index()


def write_translation_report(translation, out: Path) -> list[Path]:
    """Write the figures and ``report.html`` for a translation; return the paths."""
    from bayes.translate.run import summary_table

    tree = translation.tree
    out.mkdir(parents=True, exist_ok=True)
    exposure = tree["exposure"].to_dataset()
    risk = tree["risk"].to_dataset()
    check = tree["human_pk_check"].to_dataset().to_dataframe()
    cavity_check = tree["intracavitary_check"].to_dataset().to_dataframe()
    figures = [
        plot_fan_charts(tree["timecourse"].to_dataset(), out / "fan_charts.png"),
        plot_dose_exposure(exposure, out / "dose_exposure.png"),
        plot_dose_risk(exposure, risk, out / "dose_risk.png"),
        plot_human_pk_check(check, out / "human_pk_check.png"),
    ]
    decomposition = None
    if "variance_decomposition" in tree.children:
        decomposition = tree["variance_decomposition"].to_dataset()
        figures.append(
            plot_variance_decomposition(decomposition, out / "variance_decomposition.png")
        )
    summary = summary_table(tree)
    page = _page(translation, summary, check, cavity_check, decomposition, figures)
    path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return [*figures, path]


def _page(translation, summary, check, cavity_check, decomposition, figures) -> str:
    attrs = translation.tree.attrs
    esc = html.escape
    warning = ""
    if attrs["posterior_kind"] == "prior":
        warning = (
            "<p class='warn'>The 'posterior' is a prior set: these are prior predictions, "
            "not a fitted translation.</p>"
        )
    dominant = ""
    if decomposition is not None:
        share = decomposition["normalised_share"].mean("scenario")
        rows = [
            {
                "output": o,
                **{s: float(share.sel(output=o, source=s)) for s in share["source"].values},
            }
            for o in share["output"].values
        ]
        dominant = (
            "<h2>Variance decomposition (mean over scenarios)</h2>"
            + _frame_html(pd.DataFrame(rows))
            + f"<p>Estimated on {decomposition.attrs['n_draws']} draws x "
            f"{decomposition.attrs['n_patients']} patients per scenario; concentrations and AUCs "
            "on the log scale.</p>"
        )
    scenario_rows = [
        {
            "scenario": s.name,
            "cavity": s.cavity,
            "effusion": s.effusion,
            "capsules": s.capsules,
            "total_output_ug_per_day": s.total_output_ug_per_day,
            "implant_days": " ".join(f"{d:g}" for d in s.implant_days),
            "anti_pd1_days": " ".join(f"{d:g}" for d in s.anti_pd1_days),
            "weight": f"{s.body_weight.median_kg:g} kg, CV {s.body_weight.cv:g}",
            "horizon_days": s.horizon_days,
            "reference_day": s.reference_day,
        }
        for s in translation.scenarios
    ]
    priors_table = pd.DataFrame(translation.priors.table())
    images = "".join(image(p, p.stem.replace("_", " ")) for p in figures)
    body = f"""
<h1>Human dosing translation</h1>{warning}
<p>Scenarios {esc(attrs["scenario_file"])}; posterior {esc(attrs["posterior_file"])}
({esc(attrs["posterior_kind"])}); translation priors {esc(attrs["translation_priors"])};
seed {attrs["seed"]}; version {esc(attrs["version"])}. {attrs["n_draws"]} draws x
{attrs["n_patients"]} virtual patients per scenario. Fixed sources:
{esc(attrs["fixed_sources"] or "none")}. Human clearance method
{esc(attrs["human_clearance_method"])} (weight of allometry {attrs["allometry_weight"]:.2f}).
Simulation time {attrs["seconds_simulation"]:.1f} s; total {attrs["seconds_total"]:.1f} s.</p>
<h2>Scenarios</h2>{_frame_html(pd.DataFrame(scenario_rows))}
<h2>Exposure and effect: median [5%, 95%] over draws and patients</h2>
{_frame_html(_summary_wide(summary))}
<h2>Toxicity risk: probability a patient exceeds each reference</h2>
{_frame_html(_risk_wide(summary))}
<h2>Human i.v. bolus check (aldesleukin)</h2>{_frame_html(check)}
<h2>Human intracavitary check (reported, not used as input)</h2>{_frame_html(cavity_check)}
{dominant}<h2>Figures</h2>{images}
<h2>Translation priors</h2>{_frame_html(priors_table)}
"""
    return page("Human dosing translation", body)
