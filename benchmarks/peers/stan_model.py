"""Stan (PyStan 3) version of the reference model: same priors, same non-centring.

One program serves both `ode_rk45_tol` and `ode_bdf_tol` (chosen by the data flag
`use_bdf`), so httpstan compiles it once and the two runs differ only in the solver.
"""

from __future__ import annotations

import numpy as np

from .problem import PRIORS, Dataset

RTOL = 1e-6
ATOL = 1e-6
#: Stan's ``max_num_steps`` counts accepted steps between consecutive output times (Boost's
#: checker is reset at every observation), so 300 over the 7 intervals allows ~2100 steps per
#: mouse: the budget of the engine (``max_steps=2000`` attempts per solve, after which its
#: outputs are NaN and the sampler rejects the point). At the true values Stan needs at most
#: 15 steps per interval. With 1e6 (Stan's default) early warm-up crawled through stiff
#: corners of parameter space (large k_kill or g) that the engine rejects after its budget;
#: with the same budget both reject there.
MAX_STEPS = 300

_PROGRAM = """
functions {
  vector tumour_rhs(real t, vector y, real g, real K, real k_kill, real k_out, real dose) {
    vector[2] dydt;
    dydt[1] = g * y[1] * (1 - y[1] / K) - k_kill * y[2] * y[1];
    dydt[2] = dose - k_out * y[2];
    return dydt;
  }
}
data {
  int<lower=1> N;
  int<lower=1> T;                 // observation days after day 0
  array[T] real ts;
  vector[N] dose;
  matrix[N, T + 1] log_y;         // column 1 is day 0
  int<lower=0, upper=1> use_bdf;
  real rtol;
  real atol;
  int max_steps;
}
parameters {
  real log_g;
  real log_K;
  real log_k_kill;
  real log_k_out;
  real log_V0;
  real<lower=0> omega_g;
  real<lower=0> omega_k;
  real<lower=0> omega_V0;
  real<lower=0> sigma;
  vector[N] z_g;
  vector[N] z_k;
  vector[N] z_V0;
}
model {
  real K = exp(log_K);
  real k_out = exp(log_k_out);
  vector[N] g = exp(log_g + omega_g * z_g);
  vector[N] k_kill = exp(log_k_kill + omega_k * z_k);
  vector[N] V0 = exp(log_V0 + omega_V0 * z_V0);
__PRIORS__
  z_g ~ std_normal();
  z_k ~ std_normal();
  z_V0 ~ std_normal();
  for (i in 1:N) {
    array[T] vector[2] sol;
    vector[2] y0 = [V0[i], 0]';
    if (use_bdf) {
      sol = ode_bdf_tol(tumour_rhs, y0, 0.0, ts, rtol, atol, max_steps,
                        g[i], K, k_kill[i], k_out, dose[i]);
    } else {
      sol = ode_rk45_tol(tumour_rhs, y0, 0.0, ts, rtol, atol, max_steps,
                         g[i], K, k_kill[i], k_out, dose[i]);
    }
    log_y[i, 1] ~ normal(log(V0[i]), sigma);
    for (t in 1:T) {
      log_y[i, t + 1] ~ normal(log(sol[t][1]), sigma);
    }
  }
}
"""

TRIVIAL_PROGRAM = "parameters { real x; } model { x ~ std_normal(); }"


def _prior_line(name: str, spec: tuple) -> str:
    """Stan sampling statement for one entry of problem.PRIORS."""
    if spec[0] == "normal":
        return f"  {name} ~ normal({float(spec[1]):.17g}, {float(spec[2]):.17g});"
    return f"  {name} ~ normal(0, {float(spec[1]):.17g});  // half-normal via <lower=0>"


def program() -> str:
    """Full Stan program text with the priors generated from problem.PRIORS."""
    priors = "\n".join(_prior_line(n, s) for n, s in PRIORS.items())
    return _PROGRAM.replace("__PRIORS__", priors)


def stan_data(data: Dataset, use_bdf: bool) -> dict:
    """Data dictionary for the Stan program."""
    return {
        "N": data.n_mice,
        "T": len(data.times) - 1,
        "ts": [float(t) for t in data.times[1:]],
        "dose": np.asarray(data.dose, dtype=float),
        "log_y": np.asarray(data.log_y, dtype=float),
        "use_bdf": int(use_bdf),
        "rtol": RTOL,
        "atol": ATOL,
        "max_steps": MAX_STEPS,
    }


def initial_values(data: Dataset, chains: int, seed: int) -> list[dict]:
    """Per-chain inits drawn like PyMC/nutpie's: support point + U(-1, 1) unconstrained jitter.

    (Stan's default U(-2, 2) on the unconstrained scale puts e.g. K near 1-7 and k_kill up to
    1e5, a stiff start that makes warm-up of either solver crawl; using the same initial
    distribution for every method keeps the comparison about the solvers.)
    """
    import pymc as pm

    from .pymc_models import build_model

    # The initial point depends only on the free variables, not on the ODE predictor: a
    # trivial predictor avoids building (and compiling) an ODE graph just for the inits.
    model = build_model(data, lambda V0, times, **_: V0[:, None] * np.ones(len(times)))
    fn = pm.initial_point.make_initial_point_fn(
        model=model, jitter_rvs=set(model.free_RVs), return_transformed=False
    )
    inits = []
    for chain in range(chains):
        point = fn(seed * 1000 + chain)
        inits.append(
            {k: (np.asarray(v).tolist() if np.ndim(v) else float(v)) for k, v in point.items()}
        )
    return inits
