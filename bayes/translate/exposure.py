"""Concentration-time curves, exposure metrics, immune effect and tumour effect per scenario.

Everything is vectorised over ``(draw, patient, time)`` in chunks of draws; no loop over patients.
Curves are evaluated on an *evaluation grid*: the output times (daily by default) plus finer
points in the first 3 days after each implant (where the local concentration rises to its peak),
just before each anti-PD-1 dose (its exposure jumps there) and the reference day, so Cmax, AUC
(trapezoid) and time above a threshold (linear interpolation of crossings) are accurate.

Tumour effect by exposure matching: the immune effect follows the mouse exposure-response
``dE/dt = k_effect (S(C_L) - E)``, ``S = C^h / (EC50^h + C^h)`` with the human EC50, integrated
exactly for a piecewise-linear stimulus; the log tumour burden changes by
``growth_rate t_ref - kill_rate * integral_0^t_ref E (1 + pd1_enhancement P) dt`` (human
untreated growth, exponential over the reference window) and the reported effect is the
fractional reduction ``1 - N(t_ref) / N(0)`` clipped to ``[0, 1]`` (growth counts as 0).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from bayes.translate.closed_form import exprel_neg, il2_profiles
from bayes.translate.config import Scenario

__all__ = ["EXPOSURE_UNITS", "ScenarioResult", "evaluation_grid", "simulate_scenario"]

EXPOSURE_UNITS: dict[str, tuple[str, str]] = {
    "cmax_serum": ("ng/mL", "peak systemic (serum) IL-2"),
    "auc_serum": ("ng*day/mL", "systemic IL-2 AUC over the horizon"),
    "cmax_local": ("ng/mL", "peak local (cavity) IL-2"),
    "auc_local": ("ng*day/mL", "local IL-2 AUC over the horizon"),
    "time_above_effective": ("day", "days local IL-2 exceeds the effective local concentration"),
    "tumour_effect": ("1", "fractional tumour-burden reduction at the reference day (0..1)"),
    "local_systemic_ratio": ("1", "local over systemic IL-2 AUC"),
    "max_daily_auc_serum": ("ng*day/mL", "largest 24-h systemic IL-2 AUC"),
    "effective_concentration": ("ng/mL", "effective local IL-2 concentration (human EC50 level)"),
}
"""Per-patient outputs: unit and long name."""

_IMPLANT_REFINEMENT = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.5, 2.5)
_JUST_BEFORE = 1e-4
CURVE_PATIENTS = 50
"""Curves at the output times are kept for the first this many patients of every draw."""
_CHUNK_ELEMENTS = 1_000_000


@dataclass(frozen=True)
class Grid:
    """Evaluation grid of one scenario and the positions of special times in it."""

    times: np.ndarray
    output_index: np.ndarray
    day_index: np.ndarray
    reference_index: int


@dataclass
class ScenarioResult:
    """Per-patient outputs and output-time curves of one scenario.

    Attributes
    ----------
    exposure : dict of str to numpy.ndarray
        Each ``(draw, patient)``, keys of :data:`EXPOSURE_UNITS`.
    local, serum : numpy.ndarray or None
        Concentrations at the output times of the first :data:`CURVE_PATIENTS` patients,
        ``(draw, patient, time)`` float32 (None if not kept).
    """

    exposure: dict[str, np.ndarray]
    local: np.ndarray | None
    serum: np.ndarray | None


def evaluation_grid(scenario: Scenario, output_times: np.ndarray) -> Grid:
    """Return the evaluation grid of a scenario (see the module docstring)."""
    horizon = scenario.horizon_days
    parts = [output_times[output_times <= horizon], np.arange(0.0, np.floor(horizon) + 1.0)]
    parts += [day + np.asarray(_IMPLANT_REFINEMENT) for day in scenario.implant_days]
    parts += [[day - _JUST_BEFORE] for day in scenario.anti_pd1_days if day > 0]
    parts += [[scenario.reference_day, horizon, 0.0]]
    times = np.unique(np.concatenate([np.asarray(p, float) for p in parts]))
    times = times[(times >= 0.0) & (times <= horizon)]
    index = np.searchsorted(times, output_times[output_times <= horizon])
    days = np.searchsorted(times, np.arange(0.0, np.floor(horizon) + 1.0))
    return Grid(times, index, days, int(np.searchsorted(times, scenario.reference_day)))


def simulate_scenario(
    params: dict[str, np.ndarray],
    scenario: Scenario,
    output_times: np.ndarray,
    effective_fraction: float = 0.5,
    keep_curves: bool = True,
    workers: int | None = None,
) -> ScenarioResult:
    """Simulate every draw and virtual patient of one scenario.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        Human parameters, each ``(draw, patient)``
        (:func:`bayes.translate.scaling.human_parameters`).
    scenario : Scenario
        Implant days, anti-PD-1 days, horizon and reference day.
    output_times : numpy.ndarray
        Times (day) of the stored curves.
    effective_fraction : float
        The effective local concentration gives this fraction of the maximal stimulus.
    keep_curves : bool
        Return the curves at the output times (float32).
    workers : int, optional
        Threads over chunks of draws (NumPy releases the GIL); default ``min(2, cpu count)``.

    Returns
    -------
    ScenarioResult
    """
    grid = evaluation_grid(scenario, output_times)
    n_draws, n_patients = params["release_rate0"].shape
    step = max(1, _CHUNK_ELEMENTS // (n_patients * grid.times.size))

    def run(start: int) -> ScenarioResult:
        chunk = {k: v[start : start + step] for k, v in params.items()}
        return _simulate_chunk(chunk, scenario, grid, effective_fraction, keep_curves)

    workers = workers or min(2, os.cpu_count() or 1)
    starts = range(0, n_draws, step)
    if workers == 1 or len(starts) == 1:
        pieces = [run(start) for start in starts]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pieces = list(pool.map(run, starts))
    exposure = {k: np.concatenate([p.exposure[k] for p in pieces]) for k in pieces[0].exposure}
    if not keep_curves:
        return ScenarioResult(exposure, None, None)
    local = np.concatenate([p.local for p in pieces])
    serum = np.concatenate([p.serum for p in pieces])
    return ScenarioResult(exposure, local, serum)


def _release_terms(p: dict[str, np.ndarray]) -> list[tuple[np.ndarray | float, np.ndarray]]:
    if "early_fraction" in p:
        return [(1.0 - p["early_fraction"], p["k_release"]), (p["early_fraction"], p["k_early"])]
    return [(1.0, p["k_release"])]


def _simulate_chunk(p, scenario: Scenario, grid: Grid, effective_fraction: float, keep: bool):
    fraction = p["alpha_fraction"]
    disposition = [
        (fraction / p["v_central"], p["alpha"]),
        ((1.0 - fraction) / p["v_central"], p["beta"]),
    ]
    local, serum = il2_profiles(
        grid.times,
        np.asarray(scenario.implant_days),
        _release_terms(p),
        p["release_rate0"],
        p["k_abs"],
        p["k_local_loss"],
        p["v_local"],
        disposition,
    )
    threshold = p["ec50"] * (effective_fraction / (1.0 - effective_fraction)) ** (1.0 / p["hill"])
    exposure = _pk_metrics(local, serum, grid)
    exposure["time_above_effective"] = time_above(local, grid.times, threshold)
    exposure["effective_concentration"] = np.array(threshold, dtype=float)
    exposure["tumour_effect"] = tumour_effect(local, p, scenario, grid)
    kept = slice(0, CURVE_PATIENTS)
    curves = (
        (
            local[:, kept, grid.output_index].astype(np.float32),
            serum[:, kept, grid.output_index].astype(np.float32),
        )
        if keep
        else (None, None)
    )
    return ScenarioResult(exposure, *curves)


def trapezoid_weights(times: np.ndarray) -> np.ndarray:
    """Return ``w`` with ``curve @ w`` equal to the trapezoid integral over ``times``."""
    steps = np.diff(times)
    weights = np.zeros(times.size)
    weights[:-1] += 0.5 * steps
    weights[1:] += 0.5 * steps
    return weights


def daily_trapezoid_weights(times: np.ndarray, day_index: np.ndarray) -> np.ndarray:
    """Return a ``(time, day)`` matrix whose columns integrate over consecutive whole days."""
    matrix = np.zeros((times.size, max(day_index.size - 1, 0)))
    for column, (start, stop) in enumerate(zip(day_index[:-1], day_index[1:], strict=True)):
        matrix[start : stop + 1, column] = trapezoid_weights(times[start : stop + 1])
    return matrix


def _pk_metrics(local: np.ndarray, serum: np.ndarray, grid: Grid) -> dict[str, np.ndarray]:
    weights = trapezoid_weights(grid.times)
    auc_local = local @ weights
    auc_serum = serum @ weights
    daily = serum @ daily_trapezoid_weights(grid.times, grid.day_index)
    return {
        "cmax_serum": serum.max(axis=-1),
        "auc_serum": auc_serum,
        "cmax_local": local.max(axis=-1),
        "auc_local": auc_local,
        "local_systemic_ratio": auc_local / np.maximum(auc_serum, 1e-300),
        "max_daily_auc_serum": daily.max(axis=-1) if daily.shape[-1] else auc_serum,
    }


def time_above(concentration: np.ndarray, times: np.ndarray, threshold) -> np.ndarray:
    """Return the time a piecewise-linear curve spends at or above ``threshold``.

    On each interval the share above is ``(c_high - level) / (c_high - c_low)`` clipped to
    ``[0, 1]`` (1 when both ends are above, 0 when both are below).

    Parameters
    ----------
    concentration : numpy.ndarray, shape (..., time)
        Curve values at ``times``.
    times : numpy.ndarray, shape (time,)
        Increasing times.
    threshold : array_like
        Broadcastable to ``concentration.shape[:-1]``.

    Returns
    -------
    numpy.ndarray
        Shape ``concentration.shape[:-1]``.
    """
    level = np.asarray(threshold, dtype=float)[..., None]
    c0, c1 = concentration[..., :-1], concentration[..., 1:]
    high = np.maximum(c0, c1)
    spread = high - np.minimum(c0, c1)
    share = high - level
    share /= np.maximum(spread, 1e-300)
    np.clip(share, 0.0, 1.0, out=share)
    return share @ np.diff(times)


def immune_effect(stimulus: np.ndarray, times: np.ndarray, k_effect: np.ndarray) -> np.ndarray:
    """Solve ``dE/dt = k (S - E)``, ``E(0) = 0``, exactly for a piecewise-linear ``S``.

    Parameters
    ----------
    stimulus : numpy.ndarray, shape (..., time)
        Stimulus at ``times``.
    times : numpy.ndarray, shape (time,)
        Increasing times.
    k_effect : numpy.ndarray
        Rate constant, broadcastable to ``stimulus.shape[:-1]``.

    Returns
    -------
    numpy.ndarray
        ``E`` at ``times``, same shape as ``stimulus``.
    """
    k = np.asarray(k_effect, dtype=float)
    effect = np.zeros_like(stimulus)
    current = np.zeros(stimulus.shape[:-1])
    for i, dt in enumerate(np.diff(times)):
        x = k * dt
        decay = np.exp(-x)
        s0, s1 = stimulus[..., i], stimulus[..., i + 1]
        current = current * decay + s0 * (1.0 - decay) + (s1 - s0) * (1.0 - exprel_neg(x))
        effect[..., i + 1] = current
    return effect


def anti_pd1_exposure(times: np.ndarray, dose_days, k_pd1: np.ndarray) -> np.ndarray:
    """Return anti-PD-1 exposure in standard doses, ``sum exp(-k (t - t_d))`` for ``t >= t_d``."""
    k = np.asarray(k_pd1, dtype=float)[..., None]
    exposure = np.zeros(k.shape[:-1] + (times.size,))
    for day in dose_days:
        elapsed = times - day
        exposure = exposure + np.where(elapsed >= 0.0, np.exp(-k * np.maximum(elapsed, 0.0)), 0.0)
    return exposure


def tumour_effect(local: np.ndarray, p, scenario: Scenario, grid: Grid) -> np.ndarray:
    """Return the fractional tumour-burden reduction at the reference day (exposure matching)."""
    end = grid.reference_index + 1
    t = grid.times[:end]
    stimulus = np.log(np.maximum(local[..., :end], 1e-300))
    stimulus -= np.log(p["ec50"])[..., None]
    stimulus *= -p["hill"][..., None]
    np.clip(stimulus, -700.0, 700.0, out=stimulus)
    np.exp(stimulus, out=stimulus)
    stimulus += 1.0
    np.reciprocal(stimulus, out=stimulus)
    effect = immune_effect(stimulus, t, p["k_effect"])
    if scenario.anti_pd1_days:
        pd1 = anti_pd1_exposure(t, scenario.anti_pd1_days, p["k_pd1"])
        effect = effect * (1.0 + p["pd1_enhancement"][..., None] * pd1)
    killed = p["kill_rate"] * (effect @ trapezoid_weights(t))
    log_change = p["growth_rate"] * scenario.reference_day - killed
    return np.clip(-np.expm1(log_change), 0.0, 1.0)
