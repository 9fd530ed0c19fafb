"""Run a calibration: replicates on dask, kept on disk as they finish, then the tables.

Output folder ``DIR``:

- ``replicates/`` one ``rep-NNNNN.npz`` per finished replicate (and ``manifest.json``, the
  fingerprint of the inputs); a rerun of the same command skips the replicates found there,
  and a larger ``--n-sims`` extends the run (replicate ``i`` depends on the seed and ``i`` only);
- ``replicates.csv`` (status, seeds, diagnostics, time per replicate), ``ranks.csv``,
  ``uniformity.csv``, ``coverage.csv``, ``recovery.csv`` (each for all fits and for the fits
  that passed the gate, column ``fits``), ``figures/``, ``summary.md``, ``settings.json`` and
  ``calibration.log``. Files are written atomically.

``bayes.calibrate`` sits beside the command line in the layering (like ``bayes.workflow``): it
drives the model and inference layers and uses the report layer for figures.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from distributed import Client

from bayes.calibrate.config import CalibrationInputError, CalibrationSettings
from bayes.calibrate.replicate import STATUS_OK, build_models, run_replicate_task
from bayes.inference.sbc import (
    central_width,
    coverage_table,
    element_labels,
    quantile_key,
    quantile_levels,
    recovery_table,
    uniformity_table,
)
from bayes.models import HierarchicalModel
from bayes.models.hierarchy import SUBJECT_DIM
from bayes.parallel import CheckpointStore, Progress, map_batches
from bayes.workflow.folder import atomic_write_text
from bayes.workflow.inputs import file_sha256, input_files
from bayes.workflow.schema import load_workflow

log = logging.getLogger("bayes.calibrate")

REPLICATE_FOLDER = "replicates"
PRIOR_WIDTH_DRAWS = 4000
FIT_SUBSETS = ("all", "passing")
"""``all``: every fit with draws (failed gate included); ``passing``: fits that passed the gate."""


@dataclass
class CalibrationResult:
    """Everything a calibration produced."""

    settings: CalibrationSettings
    n_sims: int
    replicates: pd.DataFrame
    statistics: pd.DataFrame
    uniformity: pd.DataFrame
    coverage: pd.DataFrame
    recovery: pd.DataFrame
    families: dict[str, str]
    wall_seconds: float
    new_replicates: int

    @property
    def population(self) -> list[str]:
        """Population (non-per-subject) variables."""
        return [name for name, family in self.families.items() if family == "population"]


def replicate_key(index: int) -> str:
    """Return the checkpoint key of replicate ``index`` (fixed width: runs can be extended)."""
    return f"rep-{index:05d}"


def variable_families(model: HierarchicalModel) -> dict[str, str]:
    """Return free variable -> ``population`` or ``subject`` (has a subject dimension)."""
    dims = model.model.named_vars_to_dims
    return {
        rv.name: "subject" if SUBJECT_DIM in (dims.get(rv.name) or ()) else "population"
        for rv in model.model.free_RVs
    }


def input_hashes(settings: CalibrationSettings) -> dict[str, str]:
    """Return SHA-256 of every file the replicates depend on."""
    loaded = load_workflow(settings.workflow)
    files = {"workflow": Path(settings.workflow), **input_files(loaded)}
    if settings.fixed_file:
        files["fixed"] = Path(settings.fixed_file)
    if settings.simulation_priors:
        files["simulation_priors"] = Path(settings.simulation_priors)
    return {key: file_sha256(path) for key, path in files.items()}


def open_store(out: Path, settings: CalibrationSettings, overwrite: bool) -> CheckpointStore:
    """Open ``out/replicates``, refusing to discard replicates of other settings.

    Raises
    ------
    CalibrationInputError
        If the folder holds replicates made with other settings or inputs and ``overwrite``
        is false.
    """
    fingerprint = settings.fingerprint(input_hashes(settings))
    manifest = out / REPLICATE_FOLDER / "manifest.json"
    if manifest.exists() and not overwrite:
        stored = json.loads(manifest.read_text())
        if stored.get("inputs") != json.loads(json.dumps(fingerprint)):
            differing = _differing_keys(stored.get("inputs", {}), fingerprint)
            raise CalibrationInputError(
                f"{out} holds replicates of another calibration (differs in: {differing}); "
                "use another --out, or --overwrite to discard them"
            )
    return CheckpointStore(out / REPLICATE_FOLDER, fingerprint)


def _differing_keys(stored: dict, current: dict) -> str:
    current = json.loads(json.dumps(current))
    keys = []
    for section in ("settings", "inputs"):
        old, new = stored.get(section, {}), current.get(section, {})
        keys += [f"{section}.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if stored.get("version") != current.get("version"):
        keys.append("version")
    return ", ".join(keys) or "unknown"


def calibrate(
    settings: CalibrationSettings,
    n_sims: int,
    out: str | Path,
    client: Client,
    *,
    overwrite: bool = False,
    stream: TextIO | None = None,
    fit_model: HierarchicalModel | None = None,
) -> CalibrationResult:
    """Run (or resume) ``n_sims`` replicates on ``client`` and return the tables.

    Parameters
    ----------
    settings : CalibrationSettings
    n_sims : int
        Replicates ``0 .. n_sims - 1``.
    out : path
        Output folder; finished replicates found in ``out/replicates`` are reused.
    client : distributed.Client
    overwrite : bool
        Discard replicates of other settings found in ``out``.
    stream : text stream, optional
        Progress output (default stderr).
    fit_model : HierarchicalModel, optional
        The workflow's model when already built (its free variables and priors are used here;
        workers build their own).

    Raises
    ------
    CalibrationInputError
        For settings that cannot work (before any replicate runs), e.g. simulation priors
        giving other free variables, or replicates of other settings in ``out``.
    bayes.parallel.BatchFailureError
        When a task failed on the cluster itself (worker lost repeatedly); finished replicates
        are kept and a rerun resumes.
    """
    out = Path(out)
    if fit_model is None or settings.simulation_priors:
        fit_model, _ = build_models(settings)  # checks the simulation priors before any work
    families = variable_families(fit_model)
    store = open_store(out, settings, overwrite)
    batches = {replicate_key(i): (i,) for i in range(n_sims)}
    done_before = sum((store.directory / f"{key}.npz").exists() for key in batches)
    log.info(
        "calibration of %s: %d replicates (%d already done), mode %s",
        settings.workflow,
        n_sims,
        done_before,
        settings.mode,
    )
    tracker = Progress(n_sims, "replicates", stream)
    start = time.perf_counter()
    results = map_batches(
        client,
        run_replicate_task,
        batches,
        shared=(settings,),
        retries=1,
        store=store,
        progress=lambda key, record, resumed: _progress(tracker, key, record, resumed),
    )
    wall = time.perf_counter() - start
    records = [results[key] for key in sorted(results)]
    statistics = statistics_table(records, families)
    population = statistics[statistics["family"] == "population"]
    widths = prior_widths(fit_model, families, settings.seed)
    return CalibrationResult(
        settings=settings,
        n_sims=n_sims,
        replicates=replicates_table(records),
        statistics=statistics,
        uniformity=_by_subset(
            statistics, lambda s: uniformity_table(s, settings.rank_draws, families, settings.alpha)
        ),
        coverage=_by_subset(
            population, lambda s: coverage_table(s, settings.levels, settings.alpha)
        ),
        recovery=_by_subset(population, lambda s: recovery_table(s, *widths)),
        families=families,
        wall_seconds=wall,
        new_replicates=n_sims - done_before,
    )


def _progress(tracker: Progress, key: str, record: dict[str, np.ndarray], resumed: bool) -> None:
    status = str(record["status"])
    message = str(record.get("message", ""))
    log.debug(
        "%s: %s in %.1f s%s",
        key,
        status,
        float(record["seconds"]),
        f" ({message})" if message else "",
    )
    tracker.update(1, resumed=resumed)


def replicates_table(records: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """Return one row per replicate: status, message, seeds, diagnostics, seconds."""
    columns = [
        "replicate",
        "status",
        "message",
        "simulation_seed",
        "fit_seed",
        "divergences",
        "max_rhat",
        "min_ess_bulk",
        "min_ess_tail",
        "min_bfmi",
        "n_observations",
        "n_censored",
        "seconds",
        "worker_build_seconds",
    ]
    rows = [{c: _scalar(record.get(c)) for c in columns} for record in records]
    return pd.DataFrame(rows, columns=columns)


def _scalar(value: np.ndarray | None):
    if value is None:
        return np.nan
    item = np.asarray(value).item()
    return item


def statistics_table(
    records: list[dict[str, np.ndarray]], families: dict[str, str]
) -> pd.DataFrame:
    """Return one row per replicate and parameter element (fits with draws only)."""
    frames = []
    for record in records:
        if "parameter" not in record:
            continue
        per_element = {k: v for k, v in record.items() if np.ndim(v) == 1}
        frame = pd.DataFrame(per_element)
        frame.insert(0, "replicate", int(record["replicate"]))
        frame.insert(1, "status", str(record["status"]))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["replicate", "status", "parameter", "variable", "family"])
    table = pd.concat(frames, ignore_index=True)
    table.insert(4, "family", table["variable"].map(families).fillna("other"))
    return table


def _by_subset(statistics: pd.DataFrame, compute) -> pd.DataFrame:
    frames = []
    for subset in FIT_SUBSETS:
        chosen = statistics if subset == "all" else statistics[statistics["status"] == STATUS_OK]
        table = compute(chosen) if not chosen.empty else pd.DataFrame()
        if not table.empty:
            table.insert(0, "fits", subset)
            frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def prior_widths(
    model: HierarchicalModel, families: dict[str, str], seed: int, level: float = 0.9
) -> tuple[dict[str, float], dict[str, bool]]:
    """Return the prior central-interval width and log-scale flag of each population element.

    Widths come from :data:`PRIOR_WIDTH_DRAWS` prior draws (log scale for positive parameters).
    """
    names = [name for name, family in families.items() if family == "population"]
    draws = pm.draw([model.model[n] for n in names], draws=PRIOR_WIDTH_DRAWS, random_seed=seed)
    widths, log_scale = {}, {}
    for name, values in zip(names, draws, strict=True):
        values = np.asarray(values, dtype=float)
        labels = element_labels(name, xr.DataArray(np.zeros(values.shape[1:])))
        for label, column in zip(labels, values.reshape(PRIOR_WIDTH_DRAWS, -1).T, strict=True):
            positive = bool(np.all(column > 0))
            widths[label] = central_width(column, level, log=positive)
            log_scale[label] = positive
    return widths, log_scale


def write_tables(result: CalibrationResult, out: Path) -> list[Path]:
    """Write the CSV tables and ``settings.json`` atomically; return their paths."""
    ranks = result.statistics[
        ["replicate", "status", "parameter", "variable", "family", "truth", "rank"]
    ].assign(rank_draws=result.settings.rank_draws)
    quantiles = [quantile_key(q) for q in quantile_levels(result.settings.levels)]
    posterior_columns = ["replicate", "status", "parameter", "truth", "mean", "sd", *quantiles]
    tables = {
        "replicates.csv": result.replicates,
        "ranks.csv": ranks,
        "posterior_summaries.csv": result.statistics[
            [c for c in posterior_columns if c in result.statistics]
        ],
        "uniformity.csv": result.uniformity,
        "coverage.csv": result.coverage,
        "recovery.csv": result.recovery,
    }
    paths = [atomic_write_text(out / name, t.to_csv(index=False)) for name, t in tables.items()]
    settings = {**asdict(result.settings), "n_sims": result.n_sims}
    paths.append(atomic_write_text(out / "settings.json", json.dumps(settings, indent=2)))
    return paths
