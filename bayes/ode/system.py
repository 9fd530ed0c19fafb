"""ODE system definition: named states, named parameters and a right-hand side."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

RhsFunction = Callable[
    [TensorVariable, Mapping[str, TensorVariable], Mapping[str, TensorVariable]],
    Mapping[str, TensorVariable] | Sequence[TensorVariable],
]


@dataclass(frozen=True)
class ODESystem:
    """An autonomous or time-dependent ODE system with named states and parameters.

    Parameters
    ----------
    states : tuple of str
        State names; their order defines the last axis of ``y0`` and of the solution.
    parameters : tuple of str
        Parameter names; their order defines the columns of ``params`` given to :func:`solve`.
    rhs : callable
        ``rhs(t, y, p)`` with ``t`` a ``(subject,)`` tensor of times, ``y`` and ``p`` mappings
        from names to ``(subject,)`` tensors. Returns a mapping from state name to the
        ``(subject,)`` time derivative, or a sequence in state order. Must be built from
        PyTensor operations (``pytensor.tensor`` functions and arithmetic); the same function
        is evaluated for all subjects at once.

    Examples
    --------
    >>> system = ODESystem(
    ...     states=("V",),
    ...     parameters=("g",),
    ...     rhs=lambda t, y, p: {"V": p["g"] * y["V"]},
    ... )
    """

    states: tuple[str, ...]
    parameters: tuple[str, ...]
    rhs: RhsFunction

    def __post_init__(self) -> None:
        """Validate names and normalise them to tuples."""
        object.__setattr__(self, "states", tuple(self.states))
        object.__setattr__(self, "parameters", tuple(self.parameters))
        for kind, names in (("state", self.states), ("parameter", self.parameters)):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {kind} names in {names}")
        if not self.states:
            raise ValueError("an ODE system needs at least one state")
        if set(self.states) & set(self.parameters):
            raise ValueError("state and parameter names must differ")

    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self.states)

    @property
    def n_parameters(self) -> int:
        """Number of parameters."""
        return len(self.parameters)

    def state_index(self, name: str) -> int:
        """Return the position of state ``name``.

        Raises
        ------
        KeyError
            If ``name`` is not a state of the system.
        """
        try:
            return self.states.index(name)
        except ValueError:
            raise KeyError(f"unknown state {name!r}; states are {self.states}") from None

    def derivatives(
        self,
        t: TensorVariable,
        y: Sequence[TensorVariable],
        parameter_columns: Sequence[TensorVariable],
    ) -> list[TensorVariable]:
        """Evaluate the right-hand side on per-state batch vectors.

        Parameters
        ----------
        t : TensorVariable
            Times, shape ``(subject,)``.
        y : sequence of TensorVariable
            One ``(subject,)`` tensor per state, in ``self.states`` order.
        parameter_columns : sequence of TensorVariable
            One ``(subject,)`` tensor per parameter, in ``self.parameters`` order.

        Returns
        -------
        list of TensorVariable
            ``dy/dt`` per state, each of shape ``(subject,)``.
        """
        y_named = dict(zip(self.states, y, strict=True))
        p_named = dict(zip(self.parameters, parameter_columns, strict=True))
        out = self.rhs(t, y_named, p_named)
        if isinstance(out, Mapping):
            if set(out) != set(self.states):
                raise ValueError(
                    f"rhs returned keys {sorted(out)}, expected states {list(self.states)}"
                )
            columns = [out[name] for name in self.states]
        else:
            columns = list(out)
            if len(columns) != self.n_states:
                raise ValueError(
                    f"rhs returned {len(columns)} derivatives, expected {self.n_states}"
                )
        # Broadcast constants (e.g. a zero derivative) to the batch shape and dtype.
        return [pt.cast(pt.as_tensor_variable(c), "float64") + pt.zeros_like(t) for c in columns]
