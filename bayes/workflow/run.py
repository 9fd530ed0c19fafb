"""Run a workflow: data -> model -> NUTS -> log-likelihood -> PPC -> gate -> LOO -> run folder.

The run folder (see :mod:`bayes.workflow.folder`) holds ``results.nc`` (one DataTree: posterior,
sample_stats, log_likelihood, posterior_predictive, observed_data, constant_data; resolved
config, data hashes, package versions, seed and timings in its attributes), ``summary.csv``,
``diagnostics.json``, ``loo.csv``, ``excluded.csv``, ``workflow.toml`` (the file as given),
``config.json`` (resolved), figures in ``figures/``, ``report.html`` and ``run.log``.

``bayes.workflow`` sits beside the command line in the layering: it uses the report layer.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes.data import DataError
from bayes.inference.diagnostics import Diagnostics, check_gate
from bayes.inference.loo import loo_table
from bayes.inference.sampling import posterior_predictive, sample
from bayes.models import HierarchicalModel
from bayes.models.hierarchical import observed_name, study_hash
from bayes.models.priors import PriorError, omega_name
from bayes.workflow.folder import RunFolder, atomic_write_text
from bayes.workflow.inputs import build_model, file_sha256, input_files, load_data
from bayes.workflow.progress import ProgressBar, attach_run_log, detach_run_log
from bayes.workflow.schema import LoadedWorkflow, WorkflowError

log = logging.getLogger("bayes.workflow")

VERSIONED_PACKAGES = (
    "cytokine-factory-bayes",
    "pymc",
    "pytensor",
    "arviz",
    "nutpie",
    "numpy",
    "xarray",
    "numba",
)
SUMMARY_INTERVAL = 0.90


@dataclass
class RunResult:
    """What a finished run produced."""

    folder: Path
    diagnostics: Diagnostics
    timings: dict[str, float]
    files: list[Path] = field(default_factory=list)


class Stopwatch:
    """Named wall-clock and CPU timings of the run's steps.

    CPU seconds (this process, all threads) tell what a step costs on a machine shared with other
    work, where wall time is inflated: a single-threaded step (compilation) takes about its CPU
    time on an idle machine.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.details: list[dict[str, Any]] = []

    def table(self) -> pd.DataFrame:
        """Return ``step, wall_seconds, cpu_seconds``; sampler details follow the sample step."""
        rows = []
        for name, wall in self.seconds.items():
            rows.append(
                {
                    "step": name,
                    "wall_seconds": wall,
                    "cpu_seconds": self.cpu_seconds.get(name, np.nan),
                }
            )
            if name == "sample":
                rows += self.details
        return pd.DataFrame(rows, columns=["step", "wall_seconds", "cpu_seconds"])

    @contextmanager
    def step(self, name: str):
        """Time the enclosed block as ``name`` and log its start and duration."""
        log.info("%s ...", name)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + time.process_time() - cpu
            log.debug(
                "%s took %.1f s (%.1f s CPU)", name, self.seconds[name], self.cpu_seconds[name]
            )


def package_versions() -> dict[str, str]:
    """Return the installed versions of the packages a result depends on."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def population_variables(model: HierarchicalModel) -> list[str]:
    """Return the population-level variables: structural, error, omega and covariate effects."""
    named = model.model.named_vars
    names = list(model.spec.parameters) + [
        p for p in model.spec.error_parameters if p not in model.spec.parameters
    ]
    names += [omega_name(p) for p in model.spec.parameters]
    names += [f"beta_{e.parameter}_{e.covariate}" for e in model.effects]
    return [n for n in dict.fromkeys(names) if n in named]


def prediction_variables(model: HierarchicalModel) -> list[str]:
    """Return the observed variables drawn for the posterior predictive check.

    The noise-free predictions ``pred_<analyte>`` are stored by the sampler (computed with the
    pointwise log-likelihood in one function), so PyMC reuses them instead of solving the ODE
    again.
    """
    return [observed_name(a) for a in model.spec.observables]


def free_variables(model: HierarchicalModel) -> list[str]:
    """Return the names of the model's free random variables (what the gate checks)."""
    return [rv.name for rv in model.model.free_RVs]


def parameter_summary(tree: xr.DataTree, model: HierarchicalModel) -> pd.DataFrame:
    """Return population parameters: mean, sd, median, 5%/95% quantiles, R-hat, ESS, unit."""
    import arviz as az

    names = population_variables(model)
    posterior = tree["posterior"].to_dataset()[names]
    low, high = (1 - SUMMARY_INTERVAL) / 2, 1 - (1 - SUMMARY_INTERVAL) / 2
    rows = []
    rhat = az.rhat(posterior)
    bulk = az.ess(posterior, method="bulk")
    tail = az.ess(posterior, method="tail")
    for name in names:
        values = posterior[name].values.reshape(-1)
        rows.append(
            {
                "parameter": name,
                "mean": float(np.mean(values)),
                "sd": float(np.std(values, ddof=1)),
                "median": float(np.median(values)),
                f"q{low * 100:g}": float(np.quantile(values, low)),
                f"q{high * 100:g}": float(np.quantile(values, high)),
                "rhat": float(rhat[name].values),
                "ess_bulk": float(bulk[name].values),
                "ess_tail": float(tail[name].values),
                "unit": _unit(model, name),
            }
        )
    return pd.DataFrame(rows)


def _unit(model: HierarchicalModel, name: str) -> str:
    if name in model.priors:
        return model.priors[name].unit or ""
    for parameter in model.spec.parameters:
        if name == omega_name(parameter) and parameter in model.priors:
            effect = model.priors[parameter].random_effect
            return effect.omega.unit if effect is not None and effect.omega.unit else ""
    return ""


def resolved_config(loaded: LoadedWorkflow) -> dict[str, Any]:
    """Return the workflow with defaults filled in and paths resolved."""
    config = loaded.workflow.model_dump(mode="json")
    config["priors"] = str(loaded.resolve(loaded.workflow.priors).resolve())
    for source in config["data"]["sources"]:
        for key in ("path", "events", "mapping", "data_root"):
            if source.get(key):
                source[key] = str(loaded.resolve(source[key]).resolve())
    config["workflow_file"] = str(loaded.path.resolve())
    return config


def default_output(loaded: LoadedWorkflow) -> Path:
    """Return the output folder: ``output.folder`` or ``runs/<name>``."""
    return Path(loaded.workflow.output.folder or f"runs/{loaded.workflow.name}")


def run_workflow(
    loaded: LoadedWorkflow,
    out: Path | None = None,
    overwrite: bool = False,
    progress: ProgressBar | None = None,
) -> RunResult:
    """Run a loaded workflow and write its run folder.

    Parameters
    ----------
    loaded : LoadedWorkflow
        From :func:`bayes.workflow.load_workflow`.
    out : Path, optional
        Run folder (default: :func:`default_output`).
    overwrite : bool
        Replace an existing run folder.
    progress : ProgressBar, optional
        Progress reporter (default: one on stderr).

    Returns
    -------
    RunResult

    Raises
    ------
    bayes.workflow.folder.RunFolderExistsError
        If the output exists and ``overwrite`` is false (before any work).
    """
    folder = RunFolder(out or default_output(loaded), overwrite=overwrite)
    staging = folder.open()
    handlers = attach_run_log(staging / "run.log")
    try:
        result = _run_in(folder, loaded, progress or ProgressBar())
    except (WorkflowError, DataError, PriorError):
        detach_run_log(handlers)  # bad input found in the data: nothing worth keeping
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except BaseException:
        log.error("run stopped before completion; partial output in %s", staging)
        detach_run_log(handlers)
        raise
    detach_run_log(handlers)
    final = folder.commit()
    result.folder = final
    result.files = [final / p.relative_to(staging) for p in result.files]
    return result


def _run_in(folder: RunFolder, loaded: LoadedWorkflow, progress: ProgressBar) -> RunResult:
    workflow = loaded.workflow
    clock = Stopwatch()
    total_start, total_cpu = time.perf_counter(), time.process_time()
    log.info("workflow %s (%s)", workflow.name, loaded.path)
    shutil.copyfile(loaded.path, folder.path("workflow.toml"))
    with clock.step("load data"):
        study = load_data(loaded)
        log.info("data: %s", study.summary_line())
    with clock.step("build model"):
        model = build_model(loaded, study)
        _ = model.model
        log.info(
            "model %s: %d subjects, %d free variables",
            model.spec.name,
            model.design.n_subjects,
            len(model.model.free_RVs),
        )
    s = workflow.sampler
    with clock.step("sample"):
        tree = sample(
            model.model,
            draws=s.draws,
            tune=s.tune,
            chains=s.chains,
            seed=s.seed,
            target_accept=s.target_accept,
            sampler=s.backend,
            cores=s.cores,
            mass_matrix=s.mass_matrix,
            eigval_cutoff=s.eigval_cutoff,
            progress=progress if s.backend == "nutpie" else None,
            progressbar=progress.tty,
        )
        progress.finish()
    clock.details = _sampler_details(tree["sample_stats"].attrs)
    if workflow.checks.ppc:
        with clock.step("posterior predictive"):
            tree = posterior_predictive(model.model, tree, prediction_variables(model), s.seed + 1)
    with clock.step("diagnostics"):
        diagnostics = check_gate(tree, workflow.checks.gate, free_variables(model))
        _log_verdict(diagnostics)
        summary = parameter_summary(tree, model)
    loo = None
    if workflow.checks.loo:
        with clock.step("loo"):
            loo = _loo(tree, model)
    files: list[Path] = []
    with clock.step("write results"):
        files += _write_tables(folder, loaded, study, model, tree, diagnostics, summary, loo)
    if workflow.checks.figures:
        from bayes.report.run_figures import write_run_figures

        with clock.step("figures"):
            figures = write_run_figures(
                tree, model, folder.path("figures"), workflow.checks.dose_response_day
            )
            files += figures
    clock.seconds["total"] = time.perf_counter() - total_start
    clock.cpu_seconds["total"] = time.process_time() - total_cpu
    with clock.step("report"):
        from bayes.report.run_report import write_run_report

        report = write_run_report(
            folder.path("report.html"),
            loaded,
            study,
            model,
            diagnostics,
            summary,
            loo,
            clock.table(),
            [f for f in files if f.suffix == ".png"],
        )
        files.append(report)
    clock.seconds["total"] = time.perf_counter() - total_start
    clock.cpu_seconds["total"] = time.process_time() - total_cpu
    _write_results(folder, loaded, study, model, tree, diagnostics, clock.table())
    files.append(folder.path("results.nc"))
    log.info("timings:\n%s", clock.table().to_string(index=False, float_format="%.1f"))
    return RunResult(
        folder=folder.staging, diagnostics=diagnostics, timings=clock.seconds, files=files
    )


def _sampler_details(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the timing table from the sampler's recorded timings."""
    rows = []
    for label, wall, cpu in (
        ("  compile (nutpie, numba)", "compile_seconds", "compile_cpu_seconds"),
        ("  sampling (tune + draws)", "sampling_seconds", "sampling_cpu_seconds"),
        ("    tuning, chain-seconds", "tune_chain_seconds", None),
        ("    draws, chain-seconds", "draw_chain_seconds", None),
        ("  pointwise log-likelihood", "log_likelihood_seconds", None),
    ):
        if wall in stats:
            rows.append(
                {
                    "step": label,
                    "wall_seconds": float(stats[wall]),
                    "cpu_seconds": float(stats[cpu]) if cpu and cpu in stats else np.nan,
                }
            )
    return rows


def _log_verdict(diagnostics: Diagnostics) -> None:
    if diagnostics.passed:
        log.info(
            "diagnostics gate PASSED (max R-hat %.3f, min ESS bulk %.0f / tail %.0f, "
            "%d divergences, min E-BFMI %.2f)",
            diagnostics.max_rhat,
            diagnostics.min_ess_bulk,
            diagnostics.min_ess_tail,
            diagnostics.divergences,
            diagnostics.min_bfmi,
        )
    else:
        log.warning("diagnostics gate FAILED: %s", "; ".join(diagnostics.failures))


def _loo(tree: xr.DataTree, model: HierarchicalModel) -> pd.DataFrame:
    names = [observed_name(a) for a in model.spec.observables]
    rows = [{"variables": "all", **loo_table(tree, names)}]
    if len(names) > 1:
        rows += [{"variables": n, **loo_table(tree, [n])} for n in names]
    table = pd.DataFrame(rows)
    flagged = int(table.loc[0, "n_pareto_k_above_0.7"])
    if flagged:
        log.warning(
            "LOO: %d observations with Pareto k > 0.7 (PSIS-LOO unreliable for them)", flagged
        )
    return table


def excluded_table(study, model: HierarchicalModel) -> pd.DataFrame:
    """Return everything left out: rows excluded on reading and data the model does not use."""
    return pd.concat([study.excluded, model.design.left_out], ignore_index=True)


def _write_tables(folder, loaded, study, model, tree, diagnostics, summary, loo) -> list[Path]:
    paths = [
        atomic_write_text(folder.path("summary.csv"), summary.to_csv(index=False)),
        atomic_write_text(
            folder.path("diagnostics.json"),
            json.dumps(diagnostics.to_json_dict(), indent=2, sort_keys=True),
        ),
        atomic_write_text(
            folder.path("excluded.csv"), excluded_table(study, model).to_csv(index=False)
        ),
        atomic_write_text(
            folder.path("config.json"), json.dumps(resolved_config(loaded), indent=2)
        ),
    ]
    if loo is not None:
        paths.append(atomic_write_text(folder.path("loo.csv"), loo.to_csv(index=False)))
    return paths


def _write_results(folder, loaded, study, model, tree, diagnostics, timings) -> Path:
    tree = tree.copy()
    workflow = loaded.workflow
    hashes = {key: file_sha256(path) for key, path in input_files(loaded).items()}
    tree.attrs.update(
        {
            "workflow": workflow.name,
            "config": json.dumps(resolved_config(loaded), sort_keys=True),
            "model_config": json.dumps(model.config(), sort_keys=True),
            "data_hashes": json.dumps(hashes, sort_keys=True),
            "study_hash": study_hash(study),
            "package_versions": json.dumps(package_versions(), sort_keys=True),
            "seed": int(workflow.sampler.seed),
            "sampler": workflow.sampler.backend,
            "diagnostics_passed": int(diagnostics.passed),
            "timings_seconds": timings.to_json(orient="records"),
        }
    )
    path = folder.path("results.nc")
    tmp = path.with_name(f".{path.name}.tmp")
    tree.to_netcdf(tmp, engine="netcdf4")
    tmp.replace(path)
    return path
