"""Operating characteristics of the designs from the simulated trials.

Definitions (per trial, using that trial's true population rates):

- true MTD: the highest dose level whose true DLT rate is <= ``max_acceptable_dlt`` (none when
  even the lowest is above);
- a dose is *acceptably safe and active* when its true DLT rate is <= ``max_acceptable_dlt``
  and its true response rate is >= ``min_response``;
- patients treated above the true MTD: patients at levels above it (all patients when there
  is no true MTD);
- stopped early: the design stopped because even the lowest dose was too toxic (no dose
  selected); ``reached_max_patients`` says whether the sample size was used up;
- expansion success: at least ``min_responses`` responses (and at most ``max_dlts`` DLTs when
  set) among the expansion cohort at the selected dose; assurance is its probability over all
  simulated trials (a trial that selects no dose has no successful expansion), i.e. averaged
  over the translational posterior and the link priors.

Every probability comes with its Monte-Carlo standard error ``sqrt(p (1 - p) / n_trials)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayes.trials.config import TrialDesignConfig
from bayes.trials.truths import TruthModel

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
LINK_PARAMETERS = ("dlt_intercept", "dlt_slope", "response_intercept", "response_slope")


def true_mtd(true_dlt: np.ndarray, max_acceptable_dlt: float) -> np.ndarray:
    """Return the highest level with true DLT rate <= the limit, per trial (-1: none)."""
    acceptable = true_dlt <= max_acceptable_dlt
    n_doses = true_dlt.shape[-1]
    highest = n_doses - 1 - np.argmax(acceptable[..., ::-1], axis=-1)
    return np.where(acceptable.any(axis=-1), highest, -1)


def _mcse(probability: xr.DataArray, n_trials: int) -> xr.DataArray:
    return np.sqrt(probability * (1 - probability) / n_trials)


def trial_dataset(
    results: dict[str, np.ndarray], config: TrialDesignConfig, model: TruthModel
) -> xr.Dataset:
    """Return the per-trial results and truths as a Dataset with dims (design, trial, dose)."""
    evaluation = config.evaluation
    n_trials = results["trial"].size
    mtd = true_mtd(results["true_dlt"], evaluation.max_acceptable_dlt)
    good = (results["true_dlt"] <= evaluation.max_acceptable_dlt) & (
        results["true_response"] >= evaluation.min_response
    )
    per_design = ("design", "trial")
    per_dose = ("design", "trial", "dose")
    dose_index = np.arange(model.n_doses)
    above = dose_index[None, None, :] > mtd[None, :, None]
    data = {
        "selected": (per_design, results["selected"]),
        "n_patients": (per_dose, results["n"]),
        "n_dlt": (per_dose, results["dlt"]),
        "n_response": (per_dose, results["response"]),
        "stopped_for_toxicity": (per_design, results["stopped_for_toxicity"].astype(bool)),
        "reached_max_patients": (per_design, results["reached_max_patients"].astype(bool)),
        "patients_above_true_mtd": (per_design, (results["n"] * above).sum(axis=-1)),
        "draw": ("trial", results["draw"]),
        "link_parameter_values": (("trial", "link_parameter"), results["link_parameters"]),
        "true_dlt": (("trial", "dose"), results["true_dlt"]),
        "true_response": (("trial", "dose"), results["true_response"]),
        "true_mtd": ("trial", mtd),
        "safe_and_active": (("trial", "dose"), good),
    }
    selected = results["selected"]
    safe_pick = np.take_along_axis(
        good[None].repeat(len(config.designs), 0), np.maximum(selected, 0)[..., None], axis=-1
    )[..., 0]
    data["selected_safe_and_active"] = (per_design, (selected >= 0) & safe_pick)
    if config.expansion is not None:
        expansion = config.expansion
        success = (selected >= 0) & (results["expansion_responses"] >= expansion.min_responses)
        if expansion.max_dlts is not None:
            success &= results["expansion_dlts"] <= expansion.max_dlts
        data["expansion_responses"] = (per_design, results["expansion_responses"])
        data["expansion_dlts"] = (per_design, results["expansion_dlts"])
        data["expansion_success"] = (per_design, success)
    coords = {
        "design": [design.name for design in config.designs],
        "rule": ("design", [design.rule for design in config.designs]),
        "trial": results["trial"],
        "dose": list(model.dose_names),
        "dose_value": ("dose", model.dose_values),
        "link_parameter": list(LINK_PARAMETERS),
    }
    dataset = xr.Dataset(data, coords=coords)
    dataset["n_total"] = dataset["n_patients"].sum("dose")
    dataset["dlt_total"] = dataset["n_dlt"].sum("dose")
    dataset.attrs.update({"n_trials": n_trials, "seed": config.simulation.seed})
    return dataset


def summarise(trials: xr.Dataset) -> xr.Dataset:
    """Return the operating characteristics per design (with Monte-Carlo standard errors)."""
    n_trials = trials.sizes["trial"]
    selection = ["none", *trials["dose"].values.tolist()]
    levels = np.arange(-1, trials.sizes["dose"])
    picks = (trials["selected"] == xr.DataArray(levels, dims="selection")).mean("trial")
    picks = picks.assign_coords(selection=selection)
    summary = xr.Dataset(
        {
            "p_select": picks,
            "p_select_mcse": _mcse(picks, n_trials),
            "p_select_safe_and_active": trials["selected_safe_and_active"].mean("trial"),
            "p_stop_for_toxicity": trials["stopped_for_toxicity"].mean("trial"),
            "p_reached_max_patients": trials["reached_max_patients"].mean("trial"),
            "mean_patients": trials["n_total"].mean("trial"),
            "mean_dlts": trials["dlt_total"].mean("trial"),
            "mean_patients_above_true_mtd": trials["patients_above_true_mtd"].mean("trial"),
            "mean_patients_per_dose": trials["n_patients"].mean("trial"),
        }
    )
    for name in ("p_select_safe_and_active", "p_stop_for_toxicity"):
        summary[f"{name}_mcse"] = _mcse(summary[name], n_trials)
    for name, source in (
        ("patients", "n_total"),
        ("dlts", "dlt_total"),
        ("patients_above_true_mtd", "patients_above_true_mtd"),
    ):
        summary[f"sd_{name}"] = trials[source].std("trial")
        summary[f"mean_{name}_mcse"] = summary[f"sd_{name}"] / np.sqrt(n_trials)
        summary[f"quantile_{name}"] = trials[source].quantile(list(QUANTILES), dim="trial")
    summary["p_true_mtd"] = (
        (trials["true_mtd"] == xr.DataArray(levels, dims="selection"))
        .mean("trial")
        .assign_coords(selection=selection)
    )
    summary["mean_true_dlt"] = trials["true_dlt"].mean("trial")
    summary["mean_true_response"] = trials["true_response"].mean("trial")
    summary["p_safe_and_active"] = trials["safe_and_active"].mean("trial")
    if "expansion_success" in trials:
        summary["assurance"] = trials["expansion_success"].mean("trial")
        summary["assurance_mcse"] = _mcse(summary["assurance"], n_trials)
    summary.attrs["n_trials"] = n_trials
    return summary


def summary_table(summary: xr.Dataset) -> pd.DataFrame:
    """Return one row per design: the scalar characteristics and P(select) per dose level."""
    rows = []
    for design in summary["design"].values:
        one = summary.sel(design=design)
        row = {"design": design, "rule": str(one["rule"].values), "n_trials": summary.n_trials}
        for name, variable in one.data_vars.items():
            if variable.ndim == 0:
                row[name] = float(variable)
        for label, value, error in zip(
            one["selection"].values,
            one["p_select"].values,
            one["p_select_mcse"].values,
            strict=True,
        ):
            row[f"p_select[{label}]"] = float(value)
            row[f"p_select_mcse[{label}]"] = float(error)
        for q, value in zip(QUANTILES, one["quantile_patients"].values, strict=True):
            row[f"patients_q{int(100 * q):02d}"] = float(value)
        for q, value in zip(QUANTILES, one["quantile_dlts"].values, strict=True):
            row[f"dlts_q{int(100 * q):02d}"] = float(value)
        rows.append(row)
    return pd.DataFrame(rows)
