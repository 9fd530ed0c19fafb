"""Which uncertainty source dominates each output: variance shares by fixing one source at a time.

For output ``Y`` and source ``s``, ``share_s = 1 - Var(Y | s fixed at its median) / Var(Y)``,
the first-order (main-effect) share of ``s`` estimated by re-running the same draws, patients and
random numbers with ``s`` fixed (:meth:`TranslationDraws.fixed`). Concentrations and AUCs are
decomposed on the log scale (their uncertainty is multiplicative), time above the effective
concentration and tumour effect on their natural scale. Shares need not sum to 1 (interactions);
the normalised share ``share / sum(shares)`` is reported as well. Runs on a subset of draws and
patients (``decomposition_draws`` x ``decomposition_patients`` in the scenario settings).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayes.translate.config import Scenario, TranslationPriors
from bayes.translate.exposure import simulate_scenario
from bayes.translate.scaling import human_parameters
from bayes.translate.uncertainty import SOURCES, TranslationDraws

__all__ = ["DECOMPOSED_OUTPUTS", "LOG_SCALE_OUTPUTS", "variance_decomposition"]

DECOMPOSED_OUTPUTS = (
    "cmax_serum",
    "auc_serum",
    "cmax_local",
    "auc_local",
    "time_above_effective",
    "tumour_effect",
)
LOG_SCALE_OUTPUTS = frozenset({"cmax_serum", "auc_serum", "cmax_local", "auc_local"})


def _variances(draws, priors, scenario, output_times, effective_fraction) -> np.ndarray:
    params = human_parameters(draws, priors, scenario)
    result = simulate_scenario(params, scenario, output_times, effective_fraction, False)
    values = []
    for name in DECOMPOSED_OUTPUTS:
        y = result.exposure[name]
        y = np.log(np.maximum(y, 1e-300)) if name in LOG_SCALE_OUTPUTS else y
        values.append(float(np.var(y)))
    return np.array(values)


def variance_decomposition(
    draws: TranslationDraws,
    priors: TranslationPriors,
    scenarios: list[Scenario],
    output_times: np.ndarray,
    effective_fraction: float,
) -> xr.Dataset:
    """Return variance shares per scenario, output and source.

    Parameters
    ----------
    draws : TranslationDraws
        The (already subset) random inputs.
    priors : TranslationPriors
        Translation priors.
    scenarios : list of Scenario
        Scenarios.
    output_times : numpy.ndarray
        Output times (for the evaluation grid).
    effective_fraction : float
        Defines the effective local concentration.

    Returns
    -------
    xarray.Dataset
        ``share`` and ``normalised_share`` (scenario, output, source) and ``variance``
        (scenario, output), the total variance on the decomposition scale.
    """
    sources = [s for s in SOURCES if s not in draws.fixed_sources]
    shares = np.zeros((len(scenarios), len(DECOMPOSED_OUTPUTS), len(sources)))
    totals = np.zeros((len(scenarios), len(DECOMPOSED_OUTPUTS)))
    for i, scenario in enumerate(scenarios):
        total = _variances(draws, priors, scenario, output_times, effective_fraction)
        totals[i] = total
        for j, source in enumerate(sources):
            fixed = _variances(
                draws.fixed([source]), priors, scenario, output_times, effective_fraction
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                shares[i, :, j] = np.where(total > 0, np.clip(1.0 - fixed / total, 0, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = shares / shares.sum(axis=-1, keepdims=True)
    dims = ("scenario", "output", "source")
    return xr.Dataset(
        {
            "share": (
                dims,
                shares,
                {"long_name": "1 - Var(output | source fixed) / Var(output)", "units": "1"},
            ),
            "normalised_share": (
                dims,
                np.nan_to_num(normalised),
                {"long_name": "share / sum of shares", "units": "1"},
            ),
            "variance": (
                dims[:2],
                totals,
                {
                    "long_name": "total variance (log scale for concentrations and AUCs)",
                    "units": "1",
                },
            ),
        },
        coords={
            "scenario": [s.name for s in scenarios],
            "output": list(DECOMPOSED_OUTPUTS),
            "source": sources,
        },
        attrs={
            "n_draws": draws.shape[0],
            "n_patients": draws.shape[1],
            "log_scale_outputs": " ".join(sorted(LOG_SCALE_OUTPUTS)),
        },
    )
