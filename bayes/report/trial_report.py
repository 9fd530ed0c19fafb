"""Trial-design report: ``oc.nc``, ``oc.csv``, figures and ``report.html`` (``cytofactory trial``).

The HTML page is self-contained (figures embedded as base64 PNG, also written as files).

Used by the command line only. Every file is written to a temporary name and moved into place,
so an interrupted run never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bayes.report.html import image, page
from bayes.trials.oc import summary_table
from bayes.trials.run import TrialResults, TrialStudy

BANDS = ((0.05, 0.95, 0.2), (0.25, 0.75, 0.4))


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)
    return path


def _figure(width: float, height: float, ncols: int = 1):
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, ncols, squeeze=False)[0]


def plot_selection(summary: xr.Dataset, path: Path) -> Path:
    """Bar chart: probability of selecting each dose (and none) per design, +- 2 MCSE."""
    figure, (axis,) = _figure(8.0, 3.6)
    labels = list(summary["selection"].values)
    designs = list(summary["design"].values)
    width = 0.8 / len(designs)
    x = np.arange(len(labels))
    for index, design in enumerate(designs):
        one = summary.sel(design=design)
        axis.bar(
            x + (index - (len(designs) - 1) / 2) * width,
            one["p_select"].values,
            width,
            yerr=2 * one["p_select_mcse"].values,
            label=design,
        )
    axis.plot(x, summary["p_true_mtd"].values, "k_", markersize=18, label="P(true MTD = level)")
    axis.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    axis.set_ylabel("probability of selection")
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=110)
    return path


def plot_truths(trials: xr.Dataset, evaluation, path: Path) -> Path:
    """Plot true dose-DLT and dose-response rates across trials: median, 50 % and 90 %."""
    figure, axes = _figure(8.0, 3.2, ncols=2)
    doses = trials["dose_value"].values
    panels = (
        ("true_dlt", "P(DLT)", evaluation.max_acceptable_dlt, "tab:red"),
        ("true_response", "P(response)", evaluation.min_response, "tab:green"),
    )
    for axis, (name, label, line, colour) in zip(axes, panels, strict=True):
        values = trials[name].values
        for low, high, alpha in BANDS:
            axis.fill_between(
                doses,
                np.quantile(values, low, axis=0),
                np.quantile(values, high, axis=0),
                color=colour,
                alpha=alpha,
                linewidth=0,
            )
        axis.plot(doses, np.median(values, axis=0), color=colour, marker="o")
        axis.axhline(line, color="k", linestyle="--", linewidth=1)
        axis.set_xscale("log")
        axis.set_xticks(doses, [f"{dose:g}" for dose in doses])
        axis.minorticks_off()
        axis.set_xlabel(f"dose ({trials.attrs.get('dose_metric', 'dose')})")
        axis.set_ylabel(label)
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    figure.suptitle("true population rates across simulated trials: median, 50 % and 90 % bands")
    figure.savefig(path, dpi=110)
    return path


def plot_distributions(trials: xr.Dataset, path: Path) -> Path:
    """Histograms of sample size, DLTs and patients above the true MTD per design."""
    figure, axes = _figure(10.0, 3.2, ncols=3)
    panels = (
        ("n_total", "patients"),
        ("dlt_total", "DLTs"),
        ("patients_above_true_mtd", "patients above the true MTD"),
    )
    for axis, (name, label) in zip(axes, panels, strict=True):
        values = trials[name].values
        bins = np.arange(values.max() + 2) - 0.5
        for design, row in zip(trials["design"].values, values, strict=True):
            axis.hist(row, bins=bins, histtype="step", density=True, label=design)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of trials")
    axes[0].legend(fontsize=7)
    figure.savefig(path, dpi=110)
    return path


def plot_allocation(summary: xr.Dataset, path: Path) -> Path:
    """Mean patients treated per dose level and design."""
    figure, (axis,) = _figure(8.0, 3.2)
    doses = list(summary["dose"].values)
    designs = list(summary["design"].values)
    width = 0.8 / len(designs)
    x = np.arange(len(doses))
    for index, design in enumerate(designs):
        axis.bar(
            x + (index - (len(designs) - 1) / 2) * width,
            summary["mean_patients_per_dose"].sel(design=design).values,
            width,
            label=design,
        )
    axis.set_xticks(x, doses, rotation=20, ha="right", fontsize=8)
    axis.set_ylabel("mean patients treated")
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=110)
    return path


def _write_netcdf(results: TrialResults, path: Path) -> None:
    tree = xr.DataTree.from_dict(
        {
            "/": xr.Dataset(attrs=results.trials.attrs),
            "/summary": results.summary,
            "/trials": results.trials,
        }
    )
    tree.to_netcdf(path, engine="netcdf4")


def write_trial_report(study: TrialStudy, results: TrialResults, out: Path) -> list[Path]:
    """Write every output of a trial-design run to ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    results.trials.attrs["dose_metric"] = study.config.doses.metric
    table = summary_table(results.summary)
    written = [
        _atomic(out / "oc.nc", lambda tmp: _write_netcdf(results, tmp)),
        _atomic(out / "oc.csv", lambda tmp: table.to_csv(tmp, index=False)),
        _atomic(
            out / "design_resolved.json",
            lambda tmp: tmp.write_text(study.config.model_dump_json(indent=2)),
        ),
        _atomic(
            out / "provenance.json",
            lambda tmp: tmp.write_text(json.dumps(_jsonable(results.trials.attrs), indent=2)),
        ),
    ]
    figures = {
        "selection.png": lambda tmp: plot_selection(results.summary, tmp),
        "true_rates.png": lambda tmp: plot_truths(results.trials, study.config.evaluation, tmp),
        "distributions.png": lambda tmp: plot_distributions(results.trials, tmp),
        "allocation.png": lambda tmp: plot_allocation(results.summary, tmp),
    }
    for name, draw in figures.items():
        written.append(_atomic(out / name, draw))
    text = _html(study, results, table, [out / name for name in figures])
    written.append(_atomic(out / "report.html", lambda tmp: tmp.write_text(text)))
    return written


def _jsonable(attrs: dict) -> dict:
    return {
        key: value.item() if isinstance(value, np.generic) else value
        for key, value in attrs.items()
    }


KEY_COLUMNS = (
    ("p_select_safe_and_active", "P(select a safe & active dose)"),
    ("p_stop_for_toxicity", "P(stop early, no dose)"),
    ("mean_patients", "mean patients"),
    ("mean_dlts", "mean DLTs"),
    ("mean_patients_above_true_mtd", "mean patients above true MTD"),
    ("assurance", "assurance (expansion success)"),
)

FIGURE_CAPTIONS = {
    "selection.png": "Probability of selecting each dose level (and none) per design, with "
    "+-2 Monte-Carlo standard errors; black bars: probability that the level is the true MTD.",
    "true_rates.png": "True population DLT and response rates per dose across simulated trials "
    "(translational posterior x link priors); dashed: the safety and activity thresholds.",
    "distributions.png": "Distributions of sample size, DLTs and patients treated above the "
    "true MTD per design.",
    "allocation.png": "Mean patients treated per dose level and design.",
}


def _summary_html(table) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in KEY_COLUMNS)
    rows = []
    for _, row in table.iterrows():
        cells = []
        for name, _ in KEY_COLUMNS:
            if name not in row:
                cells.append("<td>-</td>")
                continue
            error = row.get(f"{name}_mcse")
            text = f"{row[name]:.3f}" + (f" &plusmn; {error:.3f}" if error is not None else "")
            cells.append(f"<td>{text}</td>")
        name = html.escape(row["design"])
        rows.append(f"<tr><td class='text'>{name}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th class='text'>design</th>{head}</tr>{''.join(rows)}</table>"


def _rows_html(header: tuple[str, ...], rows: list[tuple]) -> str:
    head = "".join(f"<th class='text'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td class='text'>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _designs_html(study: TrialStudy) -> str:
    rows = []
    for design, compiled in zip(study.config.designs, study.designs, strict=True):
        settings = design.model_dump(exclude={"name", "rule", "weak_log_alpha", "weak_log_beta"})
        text = ", ".join(f"{key} = {value}" for key, value in settings.items())
        grid = getattr(compiled, "grid", None)
        if grid is not None:
            sd = np.sqrt(np.diag(grid.prior_covariance))
            correlation = grid.prior_covariance[0, 1] / (sd[0] * sd[1])
            text += (
                f"; prior used: log_alpha ~ N({grid.prior_mean[0]:.2f}, {sd[0]:.2f}), "
                f"log_beta ~ N({grid.prior_mean[1]:.2f}, {sd[1]:.2f}), correlation "
                f"{correlation:.2f}, reference dose {grid.reference_dose:g}"
            )
        rows.append((design.name, design.rule, text))
    return _rows_html(("design", "rule", "settings"), rows)


def _links_html(config) -> str:
    rows = []
    for name, link in (("toxicity", config.toxicity), ("response", config.response)):
        rows.append(
            (
                f"{name}: {link.exposure} ({link.transform})",
                f"{link.reference:g} {link.reference_units}",
                f"N({link.logit_at_reference.mean:g}, {link.logit_at_reference.sd:g})",
                f"median {link.slope.median:g}, log-sd {link.slope.log_sd:g}",
                f"{link.reference_source} | {link.logit_at_reference.source} | {link.slope.source}",
            )
        )
    header = ("link", "reference exposure", "logit P at reference", "slope", "sources")
    return _rows_html(header, rows)


def _html(study: TrialStudy, results: TrialResults, table, figures: list[Path]) -> str:
    config = study.config
    attrs = results.trials.attrs
    evaluation = config.evaluation
    doses = ", ".join(
        f"{name} ({value:g})"
        for name, value in zip(study.model.dose_names, study.model.dose_values, strict=True)
    )
    expansion = (
        f"<p>Expansion: {config.expansion.n_patients} patients at the selected dose; success = "
        f"&ge; {config.expansion.min_responses} responses"
        + (f" and &le; {config.expansion.max_dlts} DLTs" if config.expansion.max_dlts else "")
        + f". {html.escape(config.expansion.source)}</p>"
        if config.expansion
        else "<p>No expansion cohort.</p>"
    )
    provenance = "".join(
        f"<tr><td class='text'>{html.escape(str(k))}</td><td class='text'>"
        f"{html.escape(str(v))}</td></tr>"
        for k, v in attrs.items()
        if k != "design_config_json"
    )
    parts = [
        f"<h1>Trial design: {html.escape(config.name)}</h1>",
        f"<p class='small'>{attrs['n_trials']} simulated trials per design (seed {attrs['seed']}),"
        " every design on the same truths and patients; simulation time "
        f"{results.seconds:.1f} s.</p>",
        "<h2>Operating characteristics</h2>",
        _summary_html(table),
        "<p class='small'>&plusmn; one Monte-Carlo standard error. Full table: "
        "<code>oc.csv</code>; every trial: <code>oc.nc</code> (group <code>/trials</code>).</p>",
        "<h2>Definitions</h2>",
        f"<ul><li>True MTD: the highest dose with true DLT rate &le; "
        f"{evaluation.max_acceptable_dlt:g}. Safe &amp; active: true DLT rate &le; "
        f"{evaluation.max_acceptable_dlt:g} and true response rate &ge; "
        f"{evaluation.min_response:g}. {html.escape(evaluation.source)}</li>"
        "<li>Stop early: the design stopped because even the lowest dose was too toxic.</li>"
        f"<li>Dose levels ({config.doses.metric}): {html.escape(doses)}.</li></ul>",
        "<h2>Designs</h2>",
        _designs_html(study),
        expansion,
        "<h2>Truths: exposure-event links</h2>",
        "<p class='small'>Each trial draws one translational posterior draw and one intercept "
        "and slope per link; patients are drawn from the translation's virtual patients.</p>",
        _links_html(config),
        "<h2>Figures</h2>",
        *(image(path, FIGURE_CAPTIONS[path.name]) for path in figures),
        "<h2>Provenance</h2>",
        f"<table>{provenance}</table>",
    ]
    return page(config.name, "".join(parts))
