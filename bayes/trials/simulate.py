"""Simulate batches of trials: every design on the same truths (common random numbers).

:func:`simulate_batch` is the unit of distributed work: a pure function of the truth model,
the compiled designs, the master seed and the trial indices. Trial ``i`` always uses the seed
``SeedSequence(seed, spawn_key=(i, ...))``, so results do not depend on batching or workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayes.trials.blrm import BlrmGrid, fit_blrm_curves
from bayes.trials.config import (
    BlrmConfig,
    BoinConfig,
    ExpansionConfig,
    ThreePlusThreeConfig,
    TrialDesignConfig,
)
from bayes.trials.designs import BlrmEwoc, Boin, Design, ThreePlusThree
from bayes.trials.truths import TruthModel, draw_probabilities, draw_truth

PRIOR_STREAM = 2**62
"""Spawn key of the seed used to build translational BLRM priors (no trial has this index)."""

PER_DESIGN = ("selected", "stopped_for_toxicity", "reached_max_patients")
PER_DESIGN_DOSE = ("n", "dlt", "response")
EXPANSION = ("expansion_responses", "expansion_dlts")


def translational_blrm_prior(
    model: TruthModel, config: BlrmConfig, reference_dose: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the BLRM prior mean and covariance implied by the translational truths.

    Draws ``translational_prior_draws`` truths (posterior draw and toxicity link), fits the
    BLRM curve to each population dose-toxicity curve and returns the mean and the covariance
    multiplied by ``translational_variance_inflation`` (a discount for model misfit and for
    mouse-to-human extrapolation).
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PRIOR_STREAM,)))
    rates = np.empty((config.translational_prior_draws, model.n_doses))
    for index in range(config.translational_prior_draws):
        _, _, p_dlt, _ = draw_probabilities(model, rng)
        rates[index] = p_dlt.mean(axis=1)
    parameters = fit_blrm_curves(model.dose_values, reference_dose, rates)
    mean = parameters.mean(axis=0)
    covariance = np.cov(parameters, rowvar=False) * config.translational_variance_inflation
    return mean, covariance + 1e-6 * np.eye(2)


def compile_design(
    design: ThreePlusThreeConfig | BoinConfig | BlrmConfig, model: TruthModel, seed: int
) -> Design:
    """Return the runnable design for a configuration (BLRM: builds its prior and grid)."""
    if isinstance(design, ThreePlusThreeConfig):
        return ThreePlusThree(design, model.n_doses)
    if isinstance(design, BoinConfig):
        return Boin(design, model.n_doses)
    reference = design.reference_dose or float(np.median(model.dose_values))
    if design.prior == "translational":
        mean, covariance = translational_blrm_prior(model, design, reference, seed)
    else:
        mean = np.array([design.weak_log_alpha.mean, design.weak_log_beta.mean])
        covariance = np.diag([design.weak_log_alpha.sd**2, design.weak_log_beta.sd**2])
    grid = BlrmGrid(
        doses=model.dose_values,
        reference_dose=reference,
        prior_mean=mean,
        prior_covariance=covariance,
        target_interval=design.target_interval,
        grid_points=design.grid_points,
        half_width_sd=design.grid_half_width_sd,
    )
    return BlrmEwoc(design, grid)


def compile_designs(config: TrialDesignConfig, model: TruthModel) -> tuple[Design, ...]:
    """Compile every design of the file, in order."""
    return tuple(compile_design(d, model, config.simulation.seed) for d in config.designs)


def simulate_batch(
    model: TruthModel,
    designs: Sequence[Design],
    seed: int,
    trials: Sequence[int],
    expansion: ExpansionConfig | None = None,
) -> dict[str, np.ndarray]:
    """Simulate trials ``trials`` under every design.

    Parameters
    ----------
    model : TruthModel
        Exposures and link priors.
    designs : sequence of Design
        Compiled designs.
    seed : int
        Master seed.
    trials : sequence of int
        Global trial indices of this batch.
    expansion : ExpansionConfig, optional
        When given, the expansion cohort at each design's selected dose is evaluated.

    Returns
    -------
    dict of str to ndarray
        ``trial``, ``draw``, ``link_parameters`` (trial, 4), ``true_dlt``/``true_response``
        (trial, dose); per design ``selected``, ``stopped_for_toxicity``,
        ``reached_max_patients`` (design, trial), ``n``, ``dlt``, ``response`` (design, trial,
        dose); ``expansion_responses``/``expansion_dlts`` (design, trial; -1 if no dose).

    """
    n_trials, n_designs, n_doses = len(trials), len(designs), model.n_doses
    out = {
        "trial": np.asarray(trials, dtype=np.int64),
        "draw": np.empty(n_trials, dtype=np.int64),
        "link_parameters": np.empty((n_trials, 4)),
        "true_dlt": np.empty((n_trials, n_doses)),
        "true_response": np.empty((n_trials, n_doses)),
    }
    for name in (*PER_DESIGN, *EXPANSION):
        out[name] = np.full((n_designs, n_trials), -1, dtype=np.int64)
    for name in PER_DESIGN_DOSE:
        out[name] = np.zeros((n_designs, n_trials, n_doses), dtype=np.int64)
    for row, trial in enumerate(trials):
        truth = draw_truth(model, seed, int(trial))
        out["draw"][row] = truth.draw
        out["link_parameters"][row] = truth.link_parameters
        out["true_dlt"][row] = truth.true_dlt
        out["true_response"][row] = truth.true_response
        for column, design in enumerate(designs):
            record = design.run(truth)
            for name in PER_DESIGN:
                out[name][column, row] = int(getattr(record, name))
            for name in PER_DESIGN_DOSE:
                out[name][column, row] = getattr(record, name)
            if expansion is not None and record.selected >= 0:
                out["expansion_responses"][column, row] = truth.expansion_response[
                    record.selected
                ].sum()
                out["expansion_dlts"][column, row] = truth.expansion_dlt[record.selected].sum()
    return out


def simulate_batch_task(
    model: TruthModel,
    designs: Sequence[Design],
    expansion: ExpansionConfig | None,
    seed: int,
    trials: Sequence[int],
) -> dict[str, np.ndarray]:
    """Dask task: :func:`simulate_batch` with the shared (scattered) arguments first."""
    return simulate_batch(model, designs, seed, list(trials), expansion)


def concatenate_batches(batches: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join batch results in trial order (trial axis: 0 for truths, 1 for per-design arrays)."""
    ordered = sorted(batches, key=lambda batch: int(batch["trial"][0]))
    joined = {}
    for name in ordered[0]:
        axis = 1 if name in (*PER_DESIGN, *PER_DESIGN_DOSE, *EXPANSION) else 0
        joined[name] = np.concatenate([batch[name] for batch in ordered], axis=axis)
    return joined
