"""Mouse-to-human mapping of every CF-IL2 parameter, each with its own uncertainty.

For a virtual patient of weight ``W`` (mouse reference weight ``W_m``, human reference 70 kg)::

    release       R0 = output x rho x capsule_performance x exp(omega_rho z)      (ng/day)
                  k_release = k_fade x release_fade
    systemic CL   CL_S = CL_pop (W / 70 kg)^b_cl exp(omega_CL z)
                  CL_pop: published human CL combined with k_sys v_sys (70 kg / W_m)^b_cl
                  (``[human_pk] method``; see :mod:`bayes.translate.uncertainty`)
    disposition   biexponential, half-lives and fast-phase share from human data;
                  V1 = CL_S (f / alpha + (1 - f) / beta)
    absorption    CL_a = (k_sys v_sys / local_systemic_ratio) (W / W_m)^b_loc x cavity absorption
    local loss    CL_loss = k_local_loss v_local (W / W_m)^b_loc x cavity volume factor
    local volume  V_L = v_local (W / W_m)^b_vol x cavity volume factor (+ effusion volume)
    potency       EC50 = ec50 x ec50_factor;  kill = kill_rate x kill_factor x exp(omega_kill z)
    disease       human growth rate (human prior) x exp(omega_growth z); anti-PD-1 decline

Rate constants follow from clearances and volumes (``k_abs = CL_a / V_L``), so an effusion slows
the local kinetics without changing the steady-state local concentration ``R / (CL_a +
CL_loss)``. Hill coefficient, immune-effect delay and anti-PD-1 synergy are taken from the mouse
as they are (cellular kinetics; no weight scaling).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from bayes.translate.config import BodyWeight, Scenario, TranslationPriors
from bayes.translate.uncertainty import TranslationDraws, allometric_log_clearance, prior_values

__all__ = ["MINUTES_PER_DAY", "body_weights", "human_parameters"]

MINUTES_PER_DAY = 1440.0
NG_PER_UG = 1000.0
LN2 = float(np.log(2.0))


def body_weights(distribution: BodyWeight, z: np.ndarray) -> np.ndarray:
    """Map standard-normal deviates to a truncated log-normal body weight (kg)."""
    sd = distribution.log_sd
    if sd == 0.0:
        return np.full_like(z, distribution.median_kg, dtype=float)
    low = ndtr(np.log(distribution.lower_kg / distribution.median_kg) / sd)
    high = ndtr(np.log(distribution.upper_kg / distribution.median_kg) / sd)
    u = low + ndtr(z) * (high - low)
    return distribution.median_kg * np.exp(sd * ndtri(u))


def human_parameters(
    draws: TranslationDraws, priors: TranslationPriors, scenario: Scenario
) -> dict[str, np.ndarray]:
    """Return the human parameters of every draw and virtual patient of a scenario.

    Parameters
    ----------
    draws : TranslationDraws
        Random inputs (mouse draws and deviates by source).
    priors : TranslationPriors
        Translation priors.
    scenario : Scenario
        Cavity, effusion, body weights and dose.

    Returns
    -------
    dict of str to numpy.ndarray
        Arrays of shape ``(draw, patient)``: ``weight_kg``, ``release_rate0`` (ng/day per
        implant), ``k_release`` and, for a biphasic release, ``early_fraction``, ``k_early``;
        ``clearance_sys`` (mL/day), ``v_central`` (mL), ``alpha``, ``beta`` (1/day),
        ``alpha_fraction``; ``clearance_abs``, ``clearance_loss`` (mL/day), ``v_local`` (mL),
        ``k_abs``, ``k_local_loss`` (1/day); ``ec50`` (ng/mL), ``hill``, ``k_effect``,
        ``kill_rate``, ``pd1_enhancement``, ``k_pd1``, ``growth_rate``.
    """
    mouse = {k: v[:, None] for k, v in draws.mouse.items()}
    pop = _population_values(draws, priors, scenario.cavity)
    weight = body_weights(scenario.body_weight, draws.patient["body_weight"])
    scale = weight * NG_PER_UG / priors.scaling.mouse_weight_g
    params = {"weight_kg": weight}
    params.update(_release(mouse, pop, draws, priors, scenario))
    params.update(_systemic(mouse, pop, draws, priors, weight))
    params.update(_local(mouse, pop, draws, priors, scenario, scale))
    params.update(_pharmacodynamics(mouse, pop, draws, priors))
    return {k: np.broadcast_to(v, weight.shape) for k, v in params.items()}


def _population_values(draws: TranslationDraws, priors: TranslationPriors, cavity: str):
    scaling, human, potency = (draws.population[s] for s in ("scaling", "human_pk", "potency"))
    cavity_priors = priors.scaling.cavity[cavity]
    table = {
        "clearance_exponent": priors.scaling.clearance_exponent,
        "local_clearance_exponent": priors.scaling.local_clearance_exponent,
        "volume_exponent": priors.scaling.volume_exponent,
        "capsule_performance": priors.scaling.capsule_performance,
        "release_fade": priors.scaling.release_fade,
        "absorption_factor": cavity_priors.absorption_factor,
        "volume_factor": cavity_priors.volume_factor,
    }
    values = {k: prior_values(p, scaling[k])[:, None] for k, p in table.items()}
    human_table = {
        "clearance": priors.human_pk.clearance,
        "half_life_alpha": priors.human_pk.half_life_alpha,
        "half_life_beta": priors.human_pk.half_life_beta,
        "alpha_fraction": priors.human_pk.alpha_fraction,
        "growth_rate": priors.disease.growth_rate,
        "pd1_decay": priors.disease.pd1_decay,
    }
    values.update(
        {f"human_{k}": prior_values(p, human[k])[:, None] for k, p in human_table.items()}
    )
    values["ec50_factor"] = prior_values(priors.potency.ec50_factor, potency["ec50_factor"])[
        :, None
    ]
    values["kill_factor"] = prior_values(priors.potency.kill_factor, potency["kill_factor"])[
        :, None
    ]
    return values


def _omega(mouse: dict, name: str, default: float) -> np.ndarray | float:
    return mouse.get(f"omega_{name}", default)


def _release(mouse, pop, draws, priors, scenario) -> dict[str, np.ndarray]:
    omega = _omega(mouse, "rho", priors.between_patient.capsule_performance.value)
    rho = (
        mouse["rho"]
        * pop["capsule_performance"]
        * np.exp(omega * draws.patient["capsule_performance"])
    )
    out = {
        "release_rate0": scenario.total_output_ug_per_day * NG_PER_UG * rho,
        "k_release": mouse["k_fade"] * pop["release_fade"],
    }
    if "early_loss_fraction" in mouse and "k_early" in mouse:
        out["early_fraction"] = mouse["early_loss_fraction"]
        out["k_early"] = mouse["k_early"]
    return out


def _systemic(mouse, pop, draws, priors, weight) -> dict[str, np.ndarray]:
    b = pop["clearance_exponent"]
    log_allometric = allometric_log_clearance(mouse, b, priors)
    log_human = np.log(pop["human_clearance"] * MINUTES_PER_DAY)
    w = draws.allometry_weight
    population = np.exp(w * log_allometric + (1.0 - w) * log_human)
    omega = priors.human_pk.clearance_between_patient.value
    reference = priors.human_pk.reference_weight_kg
    clearance = population * (weight / reference) ** b * np.exp(omega * draws.patient["clearance"])
    alpha = LN2 / pop["human_half_life_alpha"] * MINUTES_PER_DAY
    beta = LN2 / pop["human_half_life_beta"] * MINUTES_PER_DAY
    fraction = pop["human_alpha_fraction"]
    return {
        "clearance_sys": clearance,
        "clearance_sys_allometric": np.exp(log_allometric),
        "v_central": clearance * (fraction / alpha + (1.0 - fraction) / beta),
        "alpha": alpha,
        "beta": beta,
        "alpha_fraction": fraction,
    }


def _local(mouse, pop, draws, priors, scenario, scale) -> dict[str, np.ndarray]:
    cavity = priors.scaling.cavity[scenario.cavity]
    clearance_scale = scale ** pop["local_clearance_exponent"]
    clearance_abs_mouse = mouse["k_sys"] * mouse["v_sys"] / mouse["local_systemic_ratio"]
    clearance_abs = clearance_abs_mouse * clearance_scale * pop["absorption_factor"]
    clearance_loss = (
        mouse["k_local_loss"] * mouse["v_local"] * clearance_scale * pop["volume_factor"]
    )
    v_local = mouse["v_local"] * scale ** pop["volume_exponent"] * pop["volume_factor"]
    if scenario.effusion:
        v_local = v_local + prior_values(cavity.effusion_volume, draws.patient["effusion_volume"])
    return {
        "clearance_abs": clearance_abs,
        "clearance_loss": clearance_loss,
        "v_local": v_local,
        "k_abs": clearance_abs / v_local,
        "k_local_loss": clearance_loss / v_local,
    }


def _pharmacodynamics(mouse, pop, draws, priors) -> dict[str, np.ndarray]:
    omega_kill = _omega(mouse, "kill_rate", priors.between_patient.kill_rate.value)
    omega_growth = priors.disease.growth_between_patient.value
    return {
        "ec50": mouse["ec50"] * pop["ec50_factor"],
        "hill": mouse["hill"],
        "k_effect": mouse["k_effect"],
        "kill_rate": mouse["kill_rate"]
        * pop["kill_factor"]
        * np.exp(omega_kill * draws.patient["kill_rate"]),
        "pd1_enhancement": mouse.get("pd1_enhancement", np.zeros_like(mouse["hill"])),
        "k_pd1": pop["human_pd1_decay"],
        "growth_rate": pop["human_growth_rate"]
        * np.exp(omega_growth * draws.patient["growth_rate"]),
    }
