"""Reference problem: tumour growth with drug kill in 24 mice, simulated once with scipy.

Everything that defines the *model* (true values, priors, design) lives here so that
every method fits exactly the same posterior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp

# Design: 3 groups x 8 mice; dose is the input rate of effector E (units/day).
GROUP_DOSES = (0.0, 1.0, 2.0)
MICE_PER_GROUP = 8
OBS_DAYS = np.arange(0.0, 15.0, 2.0)  # 0, 2, ..., 14
NOISE_SD = 0.2

TRUE = {
    "log_g": np.log(0.35),
    "log_K": np.log(2000.0),
    "log_k_kill": np.log(0.02),
    "log_k_out": np.log(0.5),
    "log_V0": np.log(50.0),
    "omega_g": 0.25,
    "omega_k": 0.30,
    "omega_V0": 0.20,
    "sigma": NOISE_SD,
}

# Priors, written once: name -> (distribution, *args). Normal(mu, sd) / HalfNormal(sd).
PRIORS = {
    "log_g": ("normal", np.log(0.3), 0.5),
    "log_K": ("normal", np.log(1500.0), 0.5),
    "log_k_kill": ("normal", np.log(0.03), 0.75),
    "log_k_out": ("normal", np.log(0.5), 0.5),
    "log_V0": ("normal", np.log(40.0), 0.5),
    "omega_g": ("halfnormal", 0.5),
    "omega_k": ("halfnormal", 0.5),
    "omega_V0": ("halfnormal", 0.5),
    "sigma": ("halfnormal", 0.5),
}
POPULATION_PARAMS = tuple(PRIORS)
RANDOM_EFFECTS = ("z_g", "z_k", "z_V0")  # standard-normal, one per mouse each


@dataclass
class Dataset:
    """Simulated observations plus the true per-mouse effects (for timing at the truth)."""

    dose: np.ndarray  # (n_mice,)
    times: np.ndarray  # (n_obs,) observation days, first is 0
    log_y: np.ndarray  # (n_mice, n_obs) log observed tumour burden
    true_z: dict = field(default_factory=dict)  # z_g, z_k, z_V0 -> (n_mice,)

    @property
    def n_mice(self) -> int:
        return int(self.dose.shape[0])

    def replicate(self, factor: int) -> Dataset:
        """Tile the design `factor` times (used for the engine scaling measurement)."""
        return Dataset(
            dose=np.tile(self.dose, factor),
            times=self.times,
            log_y=np.tile(self.log_y, (factor, 1)),
            true_z={k: np.tile(v, factor) for k, v in self.true_z.items()},
        )


def individual_params(pop: dict, z: dict) -> dict:
    """Per-mouse g, k_kill, V0 from population values and non-centred effects (numpy)."""
    return {
        "g": np.exp(pop["log_g"] + pop["omega_g"] * z["z_g"]),
        "k_kill": np.exp(pop["log_k_kill"] + pop["omega_k"] * z["z_k"]),
        "V0": np.exp(pop["log_V0"] + pop["omega_V0"] * z["z_V0"]),
    }


def rhs(t, y, g, K, k_kill, k_out, dose):
    """Right-hand side dV/dt, dE/dt for one mouse."""
    V, E = y
    return [g * V * (1.0 - V / K) - k_kill * E * V, dose - k_out * E]


def solve_mouse(g, K, k_kill, k_out, dose, V0, times) -> np.ndarray:
    """Tight-tolerance scipy solution V(times) for one mouse."""
    sol = solve_ivp(
        rhs,
        (0.0, times[-1]),
        [V0, 0.0],
        t_eval=times,
        args=(g, K, k_kill, k_out, dose),
        method="LSODA",
        rtol=1e-10,
        atol=1e-10,
    )
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y[0]


def simulate(seed: int = 20240611) -> Dataset:
    """Simulate the 24-mouse data set with log-normal observation noise."""
    rng = np.random.default_rng(seed)
    dose = np.repeat(np.asarray(GROUP_DOSES), MICE_PER_GROUP)
    n = dose.size
    z = {name: rng.standard_normal(n) for name in RANDOM_EFFECTS}
    ind = individual_params(TRUE, z)
    K, k_out = np.exp(TRUE["log_K"]), np.exp(TRUE["log_k_out"])
    V = np.stack(
        [
            solve_mouse(ind["g"][i], K, ind["k_kill"][i], k_out, dose[i], ind["V0"][i], OBS_DAYS)
            for i in range(n)
        ]
    )
    log_y = np.log(V) + NOISE_SD * rng.standard_normal(V.shape)
    return Dataset(dose=dose, times=OBS_DAYS.copy(), log_y=log_y, true_z=z)


def true_point(data: Dataset) -> dict:
    """True values of every sampled parameter (population + non-centred z's)."""
    return {**TRUE, **data.true_z}


def describe_priors() -> list[str]:
    """Human-readable prior lines for RESULTS.md / JSON settings."""
    lines = []
    for name, spec in PRIORS.items():
        if spec[0] == "normal":
            lines.append(f"{name} ~ Normal({spec[1]:.4f}, {spec[2]})")
        else:
            lines.append(f"{name} ~ HalfNormal({spec[1]})")
    lines += [f"{z}[i] ~ Normal(0, 1)" for z in RANDOM_EFFECTS]
    return lines
