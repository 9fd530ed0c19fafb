"""Batched ODE solvers for PyTensor: all subjects in one graph, exact event handling.

Public API
----------
ODESystem
    Named states, named parameters and a right-hand side written with PyTensor ops.
Events
    Bolus doses and zero-order inputs (times numeric, amounts/rates possibly symbolic).
solve
    States at observation times, shape ``(subject, n_obs, n_states)``.
RK4, Dopri5, Rosenbrock
    Method configurations (fixed-step RK4, error-controlled Dormand-Prince 5(4), L-stable
    Rosenbrock RODAS3 for stiff systems).

Closed-form linear PK lives in :mod:`bayes.ode.linear`.
"""

from bayes.ode.events import Events
from bayes.ode.methods import RK4, Dopri5, Rosenbrock
from bayes.ode.solve import solve
from bayes.ode.system import ODESystem

__all__ = ["RK4", "Dopri5", "Events", "ODESystem", "Rosenbrock", "solve"]
