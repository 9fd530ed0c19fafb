"""One PyMC model (priors, non-centred effects, likelihood) with pluggable ODE predictors.

A *predictor* maps per-mouse tensors (g, K, k_kill, k_out, dose, V0) to the predicted
tumour burden V at the observation days, shape (n_mice, n_obs).  The three PyTensor
methods (engine, naive_scan, pymc_ode) differ only in the predictor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from .problem import PRIORS, RANDOM_EFFECTS, Dataset

Predictor = Callable[..., pt.TensorVariable]


def _prior(name: str):
    """Create the PyMC prior named in problem.PRIORS (inside a model context)."""
    spec = PRIORS[name]
    if spec[0] == "normal":
        return pm.Normal(name, mu=spec[1], sigma=spec[2])
    return pm.HalfNormal(name, sigma=spec[1])


def build_model(data: Dataset, predictor: Predictor) -> pm.Model:
    """Hierarchical log-normal model; `predictor` supplies V at the observation days."""
    coords = {"mouse": np.arange(data.n_mice), "day": data.times}
    with pm.Model(coords=coords) as model:
        p = {name: _prior(name) for name in PRIORS}
        z = {name: pm.Normal(name, 0.0, 1.0, dims="mouse") for name in RANDOM_EFFECTS}
        g = pt.exp(p["log_g"] + p["omega_g"] * z["z_g"])
        k_kill = pt.exp(p["log_k_kill"] + p["omega_k"] * z["z_k"])
        V0 = pt.exp(p["log_V0"] + p["omega_V0"] * z["z_V0"])
        K, k_out = pt.exp(p["log_K"]), pt.exp(p["log_k_out"])
        dose = pt.as_tensor(data.dose)
        V = predictor(g=g, K=K, k_kill=k_kill, k_out=k_out, dose=dose, V0=V0, times=data.times)
        pm.Normal(
            "log_y", mu=pt.log(V), sigma=p["sigma"], observed=data.log_y, dims=("mouse", "day")
        )
    return model


# ---------------------------------------------------------------- naive fixed-step RK4 scan
def _rhs(V, E, g, K, k_kill, k_out, dose):
    """Vectorised right-hand side over mice."""
    return g * V * (1.0 - V / K) - k_kill * E * V, dose - k_out * E


def _rk4_step(V, E, h, g, K, k_kill, k_out, dose):
    """One classical RK4 step of size h for all mice."""
    a = (g, K, k_kill, k_out, dose)
    k1v, k1e = _rhs(V, E, *a)
    k2v, k2e = _rhs(V + 0.5 * h * k1v, E + 0.5 * h * k1e, *a)
    k3v, k3e = _rhs(V + 0.5 * h * k2v, E + 0.5 * h * k2e, *a)
    k4v, k4e = _rhs(V + h * k3v, E + h * k3e, *a)
    return (
        V + h / 6.0 * (k1v + 2 * k2v + 2 * k3v + k4v),
        E + h / 6.0 * (k1e + 2 * k2e + 2 * k3e + k4e),
    )


def naive_scan_predictor(step: float = 0.1) -> Predictor:
    """Fixed-step RK4 (step `step` days) in one pytensor.scan over all mice together."""

    def predict(g, K, k_kill, k_out, dose, V0, times):
        n_steps = int(round(times[-1] / step))
        every = np.rint(times / step).astype(int)
        if not np.allclose(every * step, times):
            raise ValueError("observation days must be multiples of the RK4 step")
        (Vs, _), _ = pytensor.scan(
            lambda V, E, *a: _rk4_step(V, E, step, *a),
            outputs_info=[V0, pt.zeros_like(V0)],
            non_sequences=[g, K, k_kill, k_out, dose],
            n_steps=n_steps,
            return_updates=True,
        )
        path = pt.concatenate([V0[None, :], Vs], axis=0)  # (n_steps + 1, n_mice)
        return path[every].T

    return predict


# ---------------------------------------------------------------- pymc.ode
def _pymc_ode_rhs(y, t, p):
    """Right-hand side in pymc.ode's (y, t, p) convention, p = (g, K, k_kill, k_out, dose)."""
    V, E = y[0], y[1]
    return [p[0] * V * (1.0 - V / p[1]) - p[2] * E * V, p[4] - p[3] * E]


def pymc_ode_predictor() -> Predictor:
    """pymc.ode.DifferentialEquation (scipy odeint + forward sensitivities), one Op per mouse."""

    def predict(g, K, k_kill, k_out, dose, V0, times):
        from pymc.ode import DifferentialEquation

        ode = DifferentialEquation(
            func=_pymc_ode_rhs, times=times[1:], n_states=2, n_theta=5, t0=0.0
        )
        rows = []
        for i in range(int(dose.type.shape[0] or dose.eval().shape[0])):
            theta = pt.stack([g[i], K, k_kill[i], k_out, dose[i]])
            sol = ode(y0=pt.stack([V0[i], pt.constant(0.0)]), theta=theta)
            rows.append(pt.concatenate([V0[i][None], sol[:, 0]]))
        return pt.stack(rows)

    return predict


# ---------------------------------------------------------------- this project's engine
def engine_predictor(method_name: str = "Dopri5", **method_kwargs) -> Predictor:
    """bayes.ode.solve over all mice at once (imported lazily: the engine may be absent)."""

    def predict(g, K, k_kill, k_out, dose, V0, times):
        from bayes import ode as bode

        system = bode.ODESystem(
            states=("V", "E"),
            parameters=("g", "K", "k_kill", "k_out", "dose"),
            rhs=lambda t, y, p: {
                "V": p["g"] * y["V"] * (1 - y["V"] / p["K"]) - p["k_kill"] * y["E"] * y["V"],
                "E": p["dose"] - p["k_out"] * y["E"],
            },
        )
        ones = pt.ones_like(g)
        params = pt.stack([g, K * ones, k_kill, k_out * ones, dose * ones], axis=1)
        y0 = pt.stack([V0, pt.zeros_like(V0)], axis=1)
        obs_times = np.tile(times, (g.type.shape[0] or dose.eval().shape[0], 1))
        method = getattr(bode, method_name)(**method_kwargs)
        pred = bode.solve(system, params, y0, obs_times, method=method)
        return pred[:, :, 0]

    return predict
