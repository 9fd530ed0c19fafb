"""A one-state exponential-decay model: cheap to compile and fit, for calibration tests.

``amount' = -k * amount`` from ``amount(0) = a0``, observed with a proportional (log-scale)
error; ``k`` varies between subjects. A fixed-step RK4 keeps the graph small.
"""

from bayes.data import Study
from bayes.models import ErrorModel, ModelSpec, Observable
from bayes.ode import ODESystem
from bayes.ode.methods import RK4


def decay(study: Study) -> ModelSpec:
    """Return the decay model (time in days, concentration in ng/mL)."""
    system = ODESystem(
        states=("amount",),
        parameters=("k", "a0"),
        rhs=lambda t, y, p: {"amount": -p["k"] * y["amount"]},
    )
    return ModelSpec(
        name="decay",
        system=system,
        observables={
            "concentration": Observable(
                predict=lambda t, y, p: y["amount"], error=ErrorModel(sigma="sigma")
            )
        },
        initial_state={"amount": "a0"},
        method=RK4(step=0.5),
        t0=0.0,
    )
