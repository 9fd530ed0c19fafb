"""Run a translation: scenarios x posterior draws x virtual patients -> predictions.nc, summary.csv.

``predictions.nc`` is an ``xarray.DataTree`` (netcdf4). Group ``/exposure`` is the contract with
the trial-design layer: dims ``(draw, scenario, patient)``, variables ``cmax_serum``,
``auc_serum``, ``cmax_local``, ``auc_local``, ``time_above_effective``, ``tumour_effect`` (and
more), coordinates ``scenario``, ``capsules``, ``total_output_ug_per_day``, ``cavity``. Other
groups: ``/timecourse`` (quantiles of local and serum curves over draws and patients),
``/risk`` (probability of exceeding each toxicity reference), ``/variance_decomposition``,
``/human_pk_check``, ``/intracavitary_check``, ``/parameters`` (quantiles of human parameters).
Files are written to a temporary name and renamed, so an interrupted run leaves no complete-
looking file.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes import __version__
from bayes.data.errors import IssueCollector
from bayes.translate.config import (
    Scenario,
    ScenarioFile,
    TranslationPriors,
    load_scenarios,
    load_translation_priors,
    resolve_scenarios,
)
from bayes.translate.decomposition import variance_decomposition
from bayes.translate.exposure import EXPOSURE_UNITS, simulate_scenario
from bayes.translate.human_pk import intracavitary_check, iv_bolus_check
from bayes.translate.posterior import MousePosterior, load_posterior
from bayes.translate.scaling import human_parameters
from bayes.translate.uncertainty import TranslationDraws, draw_inputs

__all__ = ["QUANTILES", "Translation", "run_translation", "summary_table", "write_outputs"]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_PARAMETERS_REPORTED = (
    "weight_kg",
    "release_rate0",
    "clearance_sys",
    "clearance_abs",
    "clearance_loss",
    "v_local",
    "v_central",
    "ec50",
    "kill_rate",
    "growth_rate",
)


@dataclass
class Translation:
    """Result of :func:`run_translation`: the DataTree and timing."""

    tree: xr.DataTree
    scenarios: list[Scenario]
    priors: TranslationPriors
    seconds_simulation: float
    seconds_total: float


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def run_translation(
    scenario_path: str | Path,
    posterior_path: str | Path,
    *,
    priors_path: str | Path | None = None,
    draws: int | None = None,
    patients: int | None = None,
    seed: int | None = None,
    fix: Sequence[str] = (),
    decomposition: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Translation:
    """Translate a mouse posterior into human dosing scenarios.

    Parameters
    ----------
    scenario_path : str or Path
        Scenario TOML (e.g. ``workflows/human_dosing.toml``).
    posterior_path : str or Path
        ``results.nc``, a run folder holding it, or a prior-set TOML (prior draws).
    priors_path : str or Path, optional
        Translation priors; default: the scenario file's ``settings.translation_priors``
        (relative to that file) or ``priors/translation.toml``.
    draws, patients, seed : int, optional
        Override the scenario file's settings.
    fix : sequence of str
        Uncertainty sources fixed at their medians (see :data:`bayes.translate.SOURCES`).
    decomposition : bool
        Compute the variance decomposition.
    progress : callable, optional
        Receives one line per step.

    Returns
    -------
    Translation

    Raises
    ------
    bayes.data.DataError
        Bad scenario file, translation priors or posterior (every problem named by key).
    """
    started = time.perf_counter()
    scenario_path = Path(scenario_path)
    file = load_scenarios(scenario_path)
    priors = load_translation_priors(_priors_path(priors_path, file, scenario_path))
    scenarios = resolve_scenarios(file, priors, str(scenario_path))
    settings = file.settings
    n_draws = draws or settings.draws
    n_patients = patients or settings.patients
    seed = settings.seed if seed is None else seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        posterior = load_posterior(posterior_path, n_draws)
    _check_compatible(posterior, scenarios, str(scenario_path))
    _say(
        progress,
        f"posterior {posterior.path} ({posterior.kind}): {posterior.n_draws} draws of "
        f"{posterior.n_available}; {len(scenarios)} scenarios x {n_patients} patients",
    )
    inputs = draw_inputs(posterior, priors, n_patients, seed)
    if fix:
        inputs = inputs.fixed(fix)
    output_times = _output_times(scenarios, settings.output_step_days)
    simulation_start = time.perf_counter()
    exposures, timecourses, parameters = [], [], []
    for index, scenario in enumerate(scenarios, start=1):
        params = human_parameters(inputs, priors, scenario)
        result = simulate_scenario(
            params, scenario, output_times, priors.potency.effective_fraction
        )
        exposures.append(result.exposure | {"body_weight_kg": params["weight_kg"]})
        timecourses.append(_curve_quantiles(result, output_times))
        parameters.append(_parameter_quantiles(params))
        _say(
            progress,
            f"  [{index}/{len(scenarios)}] {scenario.name}: median serum Cmax "
            f"{np.median(result.exposure['cmax_serum']):.3g} ng/mL, local Cmax "
            f"{np.median(result.exposure['cmax_local']):.3g} ng/mL, tumour effect "
            f"{np.median(result.exposure['tumour_effect']):.2f}",
        )
    seconds_simulation = time.perf_counter() - simulation_start
    _say(
        progress,
        f"simulated {posterior.n_draws} draws x {len(scenarios)} scenarios x "
        f"{n_patients} patients in {seconds_simulation:.1f} s",
    )
    groups = {
        "/exposure": _exposure_dataset(exposures, scenarios),
        "/timecourse": _timecourse_dataset(timecourses, scenarios, output_times),
        "/parameters": _parameters_dataset(parameters, scenarios),
        "/human_pk_check": _table_dataset(iv_bolus_check(inputs, priors)),
        "/intracavitary_check": _table_dataset(intracavitary_check(inputs, priors)),
    }
    groups["/risk"] = _risk_dataset(groups["/exposure"], priors)
    if decomposition:
        _say(progress, "variance decomposition (each source fixed in turn)")
        subset = inputs.subset(settings.decomposition_draws, settings.decomposition_patients)
        groups["/variance_decomposition"] = variance_decomposition(
            subset, priors, scenarios, output_times, priors.potency.effective_fraction
        )
    seconds_total = time.perf_counter() - started
    root = xr.Dataset(
        attrs=_root_attrs(
            scenario_path, posterior, priors, inputs, seed, seconds_simulation, seconds_total, file
        )
    )
    tree = xr.DataTree.from_dict({"/": root, **groups})
    return Translation(tree, scenarios, priors, seconds_simulation, seconds_total)


def _priors_path(given, file: ScenarioFile, scenario_path: Path) -> Path | None:
    if given is not None:
        return Path(given)
    if file.settings.translation_priors:
        return (scenario_path.parent / file.settings.translation_priors).resolve()
    return None


def _check_compatible(posterior: MousePosterior, scenarios: list[Scenario], label: str) -> None:
    issues = IssueCollector()
    if "pd1_enhancement" not in posterior.values:
        for index, scenario in enumerate(scenarios):
            if scenario.anti_pd1_days:
                issues.add(
                    label,
                    None,
                    f"scenario.{index}.anti_pd1_days",
                    f"scenario {scenario.name!r} gives anti-PD-1 but the posterior "
                    f"{posterior.path} has no pd1_enhancement",
                )
    issues.raise_if_any()


def _output_times(scenarios: list[Scenario], step: float) -> np.ndarray:
    horizon = max(s.horizon_days for s in scenarios)
    return np.round(np.arange(0.0, horizon + step / 2, step), 10)


def _curve_quantiles(result, output_times: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for name, curves in (("local", result.local), ("serum", result.serum)):
        flat = curves.reshape(-1, curves.shape[-1])
        values = np.full((len(QUANTILES), output_times.size), np.nan)
        values[:, : flat.shape[-1]] = np.quantile(flat, QUANTILES, axis=0)
        out[name] = values
    return out


def _parameter_quantiles(params: dict[str, np.ndarray]) -> np.ndarray:
    return np.array([np.quantile(params[name], QUANTILES) for name in _PARAMETERS_REPORTED])


def _scenario_coords(scenarios: list[Scenario]) -> dict:
    return {
        "scenario": [s.name for s in scenarios],
        "capsules": ("scenario", [s.capsules for s in scenarios]),
        "total_output_ug_per_day": ("scenario", [s.total_output_ug_per_day for s in scenarios]),
        "cavity": ("scenario", [s.cavity for s in scenarios]),
        "effusion": ("scenario", [s.effusion for s in scenarios]),
        "anti_pd1": ("scenario", [bool(s.anti_pd1_days) for s in scenarios]),
        "reference_day": ("scenario", [s.reference_day for s in scenarios]),
        "horizon_days": ("scenario", [s.horizon_days for s in scenarios]),
    }


def _exposure_dataset(exposures: list[dict], scenarios: list[Scenario]) -> xr.Dataset:
    units = {**EXPOSURE_UNITS, "body_weight_kg": ("kg", "body weight of the virtual patient")}
    data = {}
    for name, (unit, long_name) in units.items():
        stacked = np.stack([e[name] for e in exposures], axis=1).astype(np.float32)
        data[name] = (
            ("draw", "scenario", "patient"),
            stacked,
            {"units": unit, "long_name": long_name},
        )
    n_draws, _, n_patients = data["cmax_serum"][1].shape
    coords = _scenario_coords(scenarios)
    coords.update({"draw": np.arange(n_draws), "patient": np.arange(n_patients)})
    return xr.Dataset(data, coords=coords)


def _timecourse_dataset(timecourses, scenarios, output_times) -> xr.Dataset:
    dims = ("scenario", "quantile", "time")
    return xr.Dataset(
        {
            "local": (
                dims,
                np.stack([t["local"] for t in timecourses]),
                {
                    "units": "ng/mL",
                    "long_name": "local (cavity) IL-2, quantiles over draws and patients",
                },
            ),
            "serum": (
                dims,
                np.stack([t["serum"] for t in timecourses]),
                {"units": "ng/mL", "long_name": "serum IL-2, quantiles over draws and patients"},
            ),
        },
        coords={
            **_scenario_coords(scenarios),
            "quantile": list(QUANTILES),
            "time": ("time", output_times, {"units": "day"}),
        },
    )


def _parameters_dataset(parameters, scenarios) -> xr.Dataset:
    return xr.Dataset(
        {
            "value": (
                ("scenario", "parameter", "quantile"),
                np.stack(parameters),
                {"long_name": "human parameter quantiles over draws and patients"},
            )
        },
        coords={
            "scenario": [s.name for s in scenarios],
            "parameter": list(_PARAMETERS_REPORTED),
            "quantile": list(QUANTILES),
        },
        attrs={
            "units": "weight_kg kg; release_rate0 ng/day; clearances mL/day; volumes mL; "
            "ec50 ng/mL; kill_rate, growth_rate 1/day"
        },
    )


def _table_dataset(table: pd.DataFrame) -> xr.Dataset:
    table = table.copy()
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(lambda v: "" if v is None else str(v))
    return xr.Dataset.from_dataframe(table.reset_index(drop=True).rename_axis("row"))


def _risk_dataset(exposure: xr.Dataset, priors: TranslationPriors) -> xr.Dataset:
    references = priors.toxicity
    fractions = np.stack(
        [(exposure[r.metric] > r.value_ng).mean("patient").values for r in references], axis=-1
    )
    return xr.Dataset(
        {
            "fraction_exceeding": (
                ("draw", "scenario", "reference"),
                fractions,
                {
                    "units": "1",
                    "long_name": "share of virtual patients exceeding the reference, per draw",
                },
            ),
            "probability": (
                ("scenario", "reference"),
                fractions.mean(axis=0),
                {
                    "units": "1",
                    "long_name": "probability that a patient exceeds "
                    "the reference (over draws and patients)",
                },
            ),
        },
        coords={
            "draw": exposure["draw"].values,
            **{k: v for k, v in _scenario_coords_from(exposure).items()},
            "reference": [r.name for r in references],
            "metric": ("reference", [r.metric for r in references]),
            "reference_value": ("reference", [r.value_ng for r in references]),
            "reference_unit": ("reference", [r.unit_ng for r in references]),
            "reference_source": ("reference", [r.source for r in references]),
        },
    )


def _scenario_coords_from(exposure: xr.Dataset) -> dict:
    names = ("capsules", "total_output_ug_per_day", "cavity", "effusion", "anti_pd1")
    coords = {"scenario": exposure["scenario"].values}
    coords.update({n: ("scenario", exposure[n].values) for n in names})
    return coords


def _root_attrs(
    scenario_path,
    posterior,
    priors,
    inputs: TranslationDraws,
    seed,
    seconds_simulation,
    seconds_total,
    file: ScenarioFile,
) -> dict:
    return {
        "scenario_file": str(scenario_path),
        "posterior_file": posterior.path,
        "posterior_kind": posterior.kind,
        "translation_priors": priors.path,
        "seed": int(seed),
        "version": __version__,
        "package_version": __version__,
        "n_draws": inputs.shape[0],
        "n_patients": inputs.shape[1],
        "fixed_sources": " ".join(inputs.fixed_sources),
        "human_clearance_method": priors.human_pk.method,
        "allometry_weight": float(inputs.allometry_weight),
        "seconds_simulation": float(seconds_simulation),
        "seconds_total": float(seconds_total),
        "description": file.description,
    }


def summary_table(tree: xr.DataTree) -> pd.DataFrame:
    """Return one row per scenario and output: mean and quantiles; risks as probabilities.

    Exposure rows pool draws and patients (the predictive distribution of a new patient).
    Risk rows give the probability of exceeding a reference as ``mean`` and, as quantiles, the
    uncertainty of the share of patients exceeding it across posterior draws.
    """
    exposure = tree["exposure"].to_dataset()
    rows = []
    for scenario in exposure["scenario"].values:
        one = exposure.sel(scenario=scenario)
        base = {
            "scenario": scenario,
            "cavity": str(one["cavity"].values),
            "capsules": float(one["capsules"].values),
            "total_output_ug_per_day": float(one["total_output_ug_per_day"].values),
        }
        for name in EXPOSURE_UNITS:
            values = one[name].values.reshape(-1).astype(float)
            rows.append(
                {
                    **base,
                    "quantity": name,
                    "unit": EXPOSURE_UNITS[name][0],
                    "mean": values.mean(),
                    **{
                        f"q{int(q * 100):02d}": v
                        for q, v in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True)
                    },
                }
            )
        risk = tree["risk"].to_dataset().sel(scenario=scenario)
        for reference in risk["reference"].values:
            share = risk["fraction_exceeding"].sel(reference=reference).values
            rows.append(
                {
                    **base,
                    "quantity": f"p_exceed_{reference}",
                    "unit": "probability",
                    "mean": float(risk["probability"].sel(reference=reference)),
                    **{
                        f"q{int(q * 100):02d}": v
                        for q, v in zip(QUANTILES, np.quantile(share, QUANTILES), strict=True)
                    },
                }
            )
    return pd.DataFrame(rows)


def write_outputs(translation: Translation, out: str | Path) -> list[Path]:
    """Write ``predictions.nc`` and ``summary.csv`` atomically into ``out``; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    predictions = out / "predictions.nc"
    tmp = out / ".predictions.nc.tmp"
    encoding = {
        "/exposure": {
            name: {"zlib": True, "complevel": 1} for name in translation.tree["exposure"].data_vars
        }
    }
    translation.tree.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    os.replace(tmp, predictions)
    summary = out / "summary.csv"
    tmp_csv = out / ".summary.csv.tmp"
    summary_table(translation.tree).to_csv(tmp_csv, index=False, float_format="%.6g")
    os.replace(tmp_csv, summary)
    return [predictions, summary]


def is_nan(value: float) -> bool:
    """Return True for a float NaN (capsule count of a scenario given by total output)."""
    return isinstance(value, float) and math.isnan(value)
