"""The run report: one self-contained HTML page (figures embedded as base64 PNG).

Sections: verdict of the diagnostics gate (at the top, red when failed), data summary, model,
priors with their sources, diagnostics, population parameter table, LOO, posterior predictive
figures, anything excluded from the data and why, provenance and timings. Used by the command
line (``cytofactory run``) only.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from bayes.data import Study
from bayes.inference.diagnostics import Diagnostics
from bayes.models import HierarchicalModel
from bayes.report.data_summary import summary_tables
from bayes.report.html import image, page
from bayes.workflow.folder import atomic_write_text
from bayes.workflow.schema import LoadedWorkflow


def _table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    if frame is None or frame.empty:
        return "<p class='small'>None.</p>"
    head = "".join(
        f"<th class='text'>{html.escape(str(c))}</th>"
        if frame[c].dtype == object
        else f"<th>{html.escape(str(c))}</th>"
        for c in frame.columns
    )
    body = []
    for _, row in frame.iterrows():
        cells = []
        for column in frame.columns:
            value = row[column]
            if isinstance(value, float):
                cells.append(f"<td>{float_format.format(value)}</td>")
            else:
                cells.append(f"<td class='text'>{html.escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _verdict(diagnostics: Diagnostics) -> str:
    t = diagnostics.thresholds
    criteria = (
        f"R-hat &le; {t.max_rhat}, bulk and tail ESS &ge; {t.min_ess_bulk:g} / "
        f"{t.min_ess_tail:g}, divergences &le; {t.max_divergences}, "
        f"E-BFMI &ge; {t.min_bfmi}"
    )
    if diagnostics.passed:
        return f"<div class='verdict pass'>Diagnostics gate PASSED ({criteria}).</div>"
    items = "".join(f"<li>{html.escape(f)}</li>" for f in diagnostics.failures)
    return (
        f"<div class='verdict fail'>Diagnostics gate FAILED ({criteria}). Do not use these "
        f"results before fixing the sampling:<ul>{items}</ul></div>"
    )


def _diagnostics_table(d: Diagnostics) -> pd.DataFrame:
    t = d.thresholds
    return pd.DataFrame(
        [
            ("max R-hat", d.max_rhat, f"<= {t.max_rhat}", d.checks["rhat"], d.worst_rhat_variable),
            (
                "min bulk ESS",
                d.min_ess_bulk,
                f">= {t.min_ess_bulk:g}",
                d.checks["ess_bulk"],
                d.worst_ess_bulk_variable,
            ),
            (
                "min tail ESS",
                d.min_ess_tail,
                f">= {t.min_ess_tail:g}",
                d.checks["ess_tail"],
                d.worst_ess_tail_variable,
            ),
            (
                "divergences",
                float(d.divergences),
                f"<= {t.max_divergences}",
                d.checks["divergences"],
                "",
            ),
            ("min E-BFMI", d.min_bfmi, f">= {t.min_bfmi}", d.checks["bfmi"], ""),
        ],
        columns=["criterion", "value", "threshold", "passed", "worst variable"],
    ).astype({"passed": str})


def _model_section(model: HierarchicalModel, loaded: LoadedWorkflow) -> str:
    spec = model.spec
    section = loaded.workflow.model
    observables = pd.DataFrame(
        [
            {
                "analyte": a,
                "family": o.error.family,
                "scale": o.error.scale,
                "sigma": o.error.sigma,
                "nu": o.error.nu or "",
                "observations": int((model.design.rows["analyte"] == a).sum()),
                "censored (M3)": int(
                    model.design.rows.loc[model.design.rows["analyte"] == a, "censored"].sum()
                ),
            }
            for a, o in spec.observables.items()
        ]
    )
    effects = ", ".join(f"{e.parameter} ~ {e.covariate}" for e in model.effects) or "none"
    options = json.dumps(section.options) if section.options else "defaults"
    return (
        f"<p><b>{html.escape(spec.name)}</b> (workflow model <code>{html.escape(section.kind)}"
        f"</code>, options {html.escape(options)}). "
        f"States: {html.escape(', '.join(spec.system.states))}. "
        f"Parameters: {html.escape(', '.join(spec.parameters))}. ODE method: "
        f"{html.escape(repr(spec.method))}. Dosed event kinds: "
        f"{html.escape(', '.join(spec.doses) or 'none')}. "
        f"Covariate effects: {html.escape(effects)}. "
        f"Random effects are log-normal (or normal on log-scale parameters), non-centred; "
        f"{model.design.n_subjects} subjects.</p>" + _table(observables)
    )


def _excluded_section(study: Study, model: HierarchicalModel) -> str:
    excluded = pd.concat([study.excluded, model.design.left_out], ignore_index=True)
    if excluded.empty:
        return "<p>Nothing was excluded: every row of the data enters the model.</p>"
    counts = excluded.groupby("reason", sort=False).agg(
        rows=("reason", "size"),
        subjects=("subject", "nunique"),
        example=("source_row", lambda r: ""),
    )
    first = excluded.drop_duplicates("reason").set_index("reason")
    counts["example"] = [
        f"{first.loc[r, 'source_file']}:{first.loc[r, 'source_row']}" for r in counts.index
    ]
    return (
        "<p>Rows excluded when reading the data and data the model does not use "
        "(full list in <code>excluded.csv</code>):</p>" + _table(counts.reset_index())
    )


def _figures_section(figures: list[Path]) -> str:
    captions = {
        "rank": "Rank plots of the population parameters (ArviZ): uniform ranks in every chain "
        "mean the chains mix.",
        "trace": "Traces and marginal posteriors of the population parameters (ArviZ).",
        "ppc_arviz": "Posterior predictive check over all observations (ArviZ plot_ppc_dist).",
        "ppc": "Posterior predictive check per group: densities of 50 predictive draws (blue) "
        "against the observed data (black).",
        "trajectories": "Per-subject data with posterior predictive median and 50%/90% bands; "
        "censored observations as red triangles at their limit.",
        "dose_response": "Change from the first observation at the dose-response day, per group: "
        "model (group mean, 90% interval) and data.",
    }
    parts = []
    for path in figures:
        key = next((k for k in captions if path.stem.startswith(k)), None)
        parts.append(image(path, captions.get(key, path.stem)))
    return "".join(parts) or "<p class='small'>No figures.</p>"


def write_run_report(
    path: Path,
    loaded: LoadedWorkflow,
    study: Study,
    model: HierarchicalModel,
    diagnostics: Diagnostics,
    summary: pd.DataFrame,
    loo: pd.DataFrame | None,
    timings: pd.DataFrame,
    figures: list[Path],
) -> Path:
    """Write ``report.html`` and return its path."""
    from bayes.models.hierarchical import study_hash
    from bayes.workflow.inputs import file_sha256, input_files
    from bayes.workflow.run import package_versions

    workflow = loaded.workflow
    tables = summary_tables(study)
    priors = model.priors.table()
    priors = priors[
        priors["parameter"].isin(
            list(model.spec.required_priors) + [f"omega_{p}" for p in model.spec.parameters]
        )
    ]
    sampler = workflow.sampler
    parts = [
        f"<h1>Run report: {html.escape(workflow.name)}</h1>",
        f"<p class='small'>{html.escape(workflow.description)}<br>workflow file "
        f"<code>{html.escape(str(loaded.path))}</code></p>",
        _verdict(diagnostics),
        "<h2>Data</h2>",
        f"<p>{html.escape(study.summary_line())}. Source: {html.escape(study.source)}</p>",
        _table(tables["subjects_per_group"]),
        _table(tables["analytes"]),
        "<h2>Model</h2>",
        _model_section(model, loaded),
        f"<h2>Priors ({html.escape(model.priors.name)})</h2>",
        "<p class='small'>Median and 90% interval in natural units; every prior's source.</p>",
        _table(priors),
        "<h2>Sampling and diagnostics</h2>",
        f"<p>{html.escape(sampler.backend)} NUTS: {sampler.chains} chains x {sampler.draws} draws "
        f"after {sampler.tune} tuning steps, target acceptance {sampler.target_accept}, seed "
        f"{sampler.seed}. Gate checked on all {len(model.model.free_RVs)} free variables.</p>",
        _table(_diagnostics_table(diagnostics)),
        "<h2>Population parameters</h2>",
        "<p class='small'>Posterior mean, SD, median and 90% interval (5% and 95% quantiles).</p>",
        _table(summary),
        "<h2>Leave-one-out cross-validation (PSIS-LOO)</h2>",
        _table(loo) if loo is not None else "<p>Not requested.</p>",
        "<p class='small'>Pareto k &gt; 0.7 marks observations for which PSIS-LOO is "
        "unreliable.</p>"
        if loo is not None
        else "",
        "<h2>Posterior predictive checks and figures</h2>",
        _figures_section(figures),
        "<h2>Excluded data</h2>",
        _excluded_section(study, model),
        "<h2>Provenance</h2>",
        f"<p>Seed {sampler.seed}; study content hash (SHA-256 of the modelled tables) "
        f"<code>{study_hash(study)}</code>. Input files (SHA-256):</p>",
        _table(
            pd.DataFrame(
                [(key, str(path), file_sha256(path)) for key, path in input_files(loaded).items()],
                columns=["workflow key", "file", "sha256"],
            )
        ),
        _table(pd.DataFrame(sorted(package_versions().items()), columns=["package", "version"])),
        "<h3>Timings</h3>",
        "<p class='small'>Wall and CPU seconds of each step (CPU: this process, all threads; "
        "on a shared machine wall time is longer than CPU time). The report is written before "
        "its own step ends.</p>",
        _table(timings, "{:.1f}"),
    ]
    return atomic_write_text(path, page(workflow.name, "".join(parts)))
