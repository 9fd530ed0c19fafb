"""Your own model, run by ``cytofactory run workflows/oral_pk.toml``: one-compartment oral PK.

A workflow names it as ``kind = "models/oral_1cpt.py:oral_one_compartment"`` (relative to the
workflow file); the function takes the study and returns a :class:`bayes.models.ModelSpec`.
"""

from bayes.data import Study
from bayes.models import DoseRoute, ErrorModel, ModelSpec, Observable
from bayes.ode import ODESystem


def oral_one_compartment(study: Study) -> ModelSpec:
    """Return gut -> central first-order absorption and elimination (time in days, L, ug).

    Parameters
    ----------
    study : Study
        Data with ``concentration`` observations (ug/L) and ``dose`` events (ug).
    """
    system = ODESystem(
        states=("gut", "central"),
        parameters=("ka", "cl", "v"),
        rhs=lambda t, y, p: {
            "gut": -p["ka"] * y["gut"],
            "central": p["ka"] * y["gut"] - p["cl"] / p["v"] * y["central"],
        },
    )
    return ModelSpec(
        name="oral_1cpt",
        system=system,
        observables={
            "concentration": Observable(
                predict=lambda t, y, p: y["central"] / p["v"], error=ErrorModel(sigma="sigma")
            )
        },
        doses={"dose": DoseRoute("gut")},
    )
