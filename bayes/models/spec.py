"""The user-facing description of a hierarchical ODE model, separate from its PyMC back-end.

A :class:`ModelSpec` says *what* the model is: an ODE system (states, parameters, right-hand side in
PyTensor ops), how dosing events enter it, which analytes are predicted from which states and with
which residual error, and how initial states follow from parameters. Which parameters vary between
subjects, and their priors, come from a :class:`~bayes.models.priors.PriorSet`. The back-end
(:class:`~bayes.models.hierarchical.HierarchicalModel`) turns spec + prior set + data into a
``pm.Model``. The CF-IL2 model is one spec built this way; a user's own model is another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from pytensor.tensor.variable import TensorVariable

from bayes.models.observation import ErrorModel
from bayes.ode import RK4, Dopri5, ODESystem, Rosenbrock

Tensors = Mapping[str, TensorVariable]
PredictFunction = Callable[[TensorVariable, Tensors, Tensors], TensorVariable]
"""``predict(t, states, parameters)``: each argument holds one entry per observation row; the
``parameters`` mapping also holds the spec's ``subject_data`` for the row's subject."""


@dataclass(frozen=True)
class Observable:
    """How one analyte is predicted from the model and how its observations scatter.

    Parameters
    ----------
    predict : callable
        ``predict(t, states, parameters) -> prediction``; ``t`` and every entry of the ``states``
        and ``parameters`` mappings have one element per observation of this analyte. Returns
        the prediction on the natural scale (e.g. a concentration), or on the log scale when
        ``log_prediction`` is true.
    error : ErrorModel
        Residual model; with ``scale="log"`` the observed log value is compared with the log
        prediction.
    log_prediction : bool
        ``predict`` already returns the log of the prediction (e.g. a log-burden state);
        only allowed with a log-scale error model.
    """

    predict: PredictFunction
    error: ErrorModel = field(default_factory=ErrorModel)
    log_prediction: bool = False

    def __post_init__(self) -> None:
        """Refuse a log prediction compared on the linear scale."""
        if self.log_prediction and self.error.scale != "log":
            raise ValueError("log_prediction=True needs an error model with scale='log'")


@dataclass(frozen=True)
class DoseRoute:
    """Where the doses of one event kind go.

    Parameters
    ----------
    state : str
        The ODE state receiving the dose: a bolus adds ``amount`` to it; an event with a duration
        is a zero-order input of ``amount / duration`` per day.
    scale : str, optional
        Name of a subject parameter multiplying the amount (e.g. bioavailability).
    amount_factor : float
        A fixed factor (e.g. a unit conversion from the data's dose unit to the state's unit).
    """

    state: str
    scale: str | None = None
    amount_factor: float = 1.0


@dataclass(frozen=True)
class IdentifiedScale:
    """Sample a log-normal population parameter through the combination the data identify.

    When the data identify only ``ln theta + shift(other parameters)`` (e.g. the cavity IL-2
    exposure, ``rho f / CL_a``), NUTS has to cross a narrow ridge between ``theta`` and the
    others. The model then samples ``ln theta + shift`` itself, as ``log_<name>``, from
    ``Normal(mu + shift, sigma)`` where ``LogNormal(mu, sigma)`` is the prior of ``theta``: an
    exact change of variables, so the joint prior is unchanged, and ``theta`` is a deterministic.

    Parameters
    ----------
    name : str
        Name of the sampled quantity (the model variable is ``log_<name>``).
    log_shift : callable
        ``log_shift(population) -> tensor``: the shift, from the other population parameters
        (a mapping name -> scalar tensor).
    unit : str
        Unit of ``exp(ln theta + shift)``.
    """

    name: str
    log_shift: Callable[[Mapping[str, TensorVariable]], TensorVariable]
    unit: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A hierarchical ODE model, described independently of PyMC.

    Parameters
    ----------
    name : str
        Short name, stored with fitted results.
    system : ODESystem
        States, parameters and right-hand side.
    observables : mapping of str to Observable
        Analyte name (as in the data) -> how it is predicted. Analytes in the data without an
        observable are left out of the likelihood and listed by the model.
    doses : mapping of str to DoseRoute
        Event kind (as in the data) -> dosing route. Events of other kinds are ignored and listed.
    initial_state : mapping of str to str or float
        State -> parameter name or constant at ``t0``; unspecified states start at 0.
    extra_parameters : tuple of str
        Parameters used by observables or dose scales but not by the right-hand side.
    references : mapping of str to numpy.ndarray
        Reference values that ``offset_from`` priors add to (e.g. the study's reference log
        burden), one per subject, shape ``(subject,)``.
    subject_data : mapping of str to numpy.ndarray
        Per-subject constants, first axis ``subject`` (e.g. implant times and outputs), handed to
        the observables with the parameters; a right-hand side that needs them closes over them.
    external_events : tuple of str
        Event kinds the spec consumes itself (e.g. implants feeding a closed-form PK) rather
        than through ``doses``.
    method : RK4, Dopri5 or Rosenbrock
        ODE method; default Dormand-Prince at sampling tolerances (rtol 1e-6, atol 1e-9:
        solver error well below any residual error, ~2x cheaper than the solver's defaults).
    t0 : float or None
        Start of integration (day); ``None`` starts each subject at its first observation or
        event.
    solution : callable, optional
        ``solution(parameters, design, t0) -> states (subject, n_obs, n_states)``: an exact or
        semi-analytic solution of ``system`` (like NONMEM's ADVAN subroutines beside $DES) used
        instead of the ODE ``method``; ``parameters`` maps every structural parameter to a
        ``(subject,)`` tensor, ``design`` is the :class:`~bayes.models.design.Design`, ``t0``
        the per-subject start times.
    identified : mapping of str to IdentifiedScale
        Log-normal population parameters sampled through an identified combination.
    """

    name: str
    system: ODESystem
    observables: Mapping[str, Observable]
    doses: Mapping[str, DoseRoute] = field(default_factory=dict)
    initial_state: Mapping[str, str | float] = field(default_factory=dict)
    extra_parameters: tuple[str, ...] = ()
    references: Mapping[str, np.ndarray] = field(default_factory=dict)
    subject_data: Mapping[str, np.ndarray] = field(default_factory=dict)
    external_events: tuple[str, ...] = ()
    method: RK4 | Dopri5 | Rosenbrock = field(default_factory=lambda: Dopri5(rtol=1e-6, atol=1e-9))
    t0: float | None = None
    solution: Callable[..., TensorVariable] | None = None
    identified: Mapping[str, IdentifiedScale] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Freeze the mappings and check that every name refers to something."""
        for name in (
            "observables",
            "doses",
            "initial_state",
            "references",
            "subject_data",
            "identified",
        ):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "extra_parameters", tuple(self.extra_parameters))
        object.__setattr__(self, "external_events", tuple(self.external_events))
        if not self.observables:
            raise ValueError(f"model {self.name!r}: at least one observable is needed")
        parameters = set(self.parameters)
        unknown = sorted(set(self.identified) - parameters)
        if unknown:
            raise ValueError(f"identified: unknown parameters {unknown}")
        for kind, route in self.doses.items():
            self.system.state_index(route.state)
            if route.scale is not None and route.scale not in parameters:
                raise ValueError(f"doses.{kind}.scale: unknown parameter {route.scale!r}")
        for state, source in self.initial_state.items():
            self.system.state_index(state)
            if isinstance(source, str) and source not in parameters:
                raise ValueError(f"initial_state.{state}: unknown parameter {source!r}")

    @property
    def parameters(self) -> tuple[str, ...]:
        """All structural parameter names: the ODE's, then the extra ones."""
        return self.system.parameters + tuple(
            p for p in self.extra_parameters if p not in self.system.parameters
        )

    @property
    def error_parameters(self) -> tuple[str, ...]:
        """Residual-error parameter names, in first-use order."""
        names: dict[str, None] = {}
        for observable in self.observables.values():
            names.update(dict.fromkeys(observable.error.parameter_names))
        return tuple(names)

    @property
    def required_priors(self) -> tuple[str, ...]:
        """Every parameter the prior set must define."""
        return self.parameters + tuple(p for p in self.error_parameters if p not in self.parameters)
