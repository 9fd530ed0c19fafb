"""Capsule IL-2 release: measured output x in-vivo performance x declining production.

Implant ``j`` of subject ``i`` at ``t_j`` releases ``R_ij(t) = D_j * rho_i * shape(t - t_j)`` for
``t >= t_j`` (ug/day), where ``D_j`` is the capsule output measured in vitro before implant and
``rho_i`` the in-vivo performance. A shape is a sum of decaying exponentials
``sum_k w_k exp(-r_k tau)`` with weights summing to 1, which keeps the local/systemic PK in
closed form (linear superposition):

- ``exponential``: ``exp(-k_fade tau)`` (DESIGN section 4);
- ``biphasic``: ``(1 - f) exp(-k_fade tau) + f exp(-k_early tau)``: a fraction ``f`` of the
  output is lost early (cells dying after encapsulation and implant), the rest fades slowly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pytensor.tensor.variable import TensorVariable

ReleaseShape = Literal["exponential", "biphasic"]
RELEASE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "exponential": ("rho", "k_fade"),
    "biphasic": ("rho", "k_fade", "early_loss_fraction", "k_early"),
}


def release_terms(
    shape: ReleaseShape, p: Mapping[str, TensorVariable]
) -> list[tuple[TensorVariable | float, TensorVariable]]:
    """Return the (weight, decay rate) pairs of a release shape.

    Parameters
    ----------
    shape : {"exponential", "biphasic"}
        Release shape.
    p : mapping
        Parameters named in :data:`RELEASE_PARAMETERS`.
    """
    if shape == "exponential":
        return [(1.0, p["k_fade"])]
    if shape == "biphasic":
        fraction = p["early_loss_fraction"]
        return [(1.0 - fraction, p["k_fade"]), (fraction, p["k_early"])]
    raise ValueError(f"unknown release shape {shape!r}; choose from {sorted(RELEASE_PARAMETERS)}")
