"""Units: parse with pint, convert to one canonical unit per dimension.

Every number is converted on read to the canonical unit of its dimension (table
:data:`CANONICAL_UNITS`). Observations and dose amounts share the table but mass and volume
differ by role: a body weight is kept in g, a dose amount in ug.

IL-2 activity (IU, kIU, MIU) is converted to mass with 18 MIU = 1.1 mg (so 1 ug = 16,363.6 IU),
but only for IL-2: analyte or event-kind names that start with ``il2``, ``il-2`` or ``il_2``
(not IL-21), or names passed explicitly. IU of anything else stays in IU.

Accepted spellings beyond pint's own: ``mm3``/``cm³`` (exponent without ``^``), ``µ``/``μ``
for micro, ``p/s`` or ``photons/s`` for bioluminescence flux, ``wk`` for week, ``cells``,
``1``/``unitless``/``none`` for dimensionless. ``%`` is dimensionless and converts to a fraction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pint

Role = Literal["observation", "amount"]

IL2_IU_PER_MG = 18e6 / 1.1
"""International units of IL-2 (aldesleukin) per mg of protein: 18 MIU = 1.1 mg."""
IL2_IU_PER_UG = IL2_IU_PER_MG / 1000.0
"""IL-2 IU per ug (about 16,363.6)."""

TIME_UNIT = "day"

# (quantity, canonical unit for observations, canonical unit for dose amounts / group doses)
CANONICAL_UNITS: tuple[tuple[str, str, str], ...] = (
    ("time", "day", "day"),
    ("volume", "mm^3", "uL"),
    ("mass", "g", "ug"),
    ("mass concentration", "ng/mL", "ng/mL"),
    ("mass rate", "ug/day", "ug/day"),
    ("mass per mass (dose per body weight)", "mg/kg", "mg/kg"),
    ("mass per area", "mg/m^2", "mg/m^2"),
    ("activity (IU, not IL-2)", "IU", "IU"),
    ("activity concentration (not IL-2)", "IU/mL", "IU/mL"),
    ("activity rate (not IL-2)", "IU/day", "IU/day"),
    ("photon flux (bioluminescence)", "p/s", "p/s"),
    ("cell count", "cell", "cell"),
    ("cell concentration", "cell/uL", "cell/uL"),
    ("dimensionless (count, fraction; % -> fraction)", "1", "1"),
)

# Analytes whose dimension is known: name pattern -> allowed canonical observation units.
ANALYTE_UNITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"^tumou?r_?volume", ("mm^3",)),
    (r"^body_?weight", ("g",)),
    (r"^il[-_ ]?2(?![0-9])", ("ng/mL", "mg/kg")),
    (r"^(bioluminescence|bli|total_flux)", ("p/s",)),
)

_DIMENSIONLESS = {"1", "unitless", "none", "-", "dimensionless", "fraction", "ratio"}
_TOKEN_ALIASES = {
    "p": "photon",
    "photons": "photon",
    "ph": "photon",
    "wk": "week",
    "wks": "week",
    "cells": "cell",
}


class UnitError(ValueError):
    """A unit is unknown, has no canonical unit, or has the wrong dimension."""


@dataclass(frozen=True)
class Conversion:
    """Multiply values in the source unit by ``factor`` to get values in ``unit``."""

    factor: float
    unit: str
    quantity: str


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """Return the project's pint registry (built on first use: pint is slow to load)."""
    import pint

    ureg = pint.UnitRegistry()
    ureg.define("IU = [international_unit]")
    ureg.define("photon = [photon]")
    ureg.define("cell = [cell]")
    return ureg


def _il2_mass_per_iu() -> pint.Quantity:
    return registry().Quantity(1.1, "mg") / registry().Quantity(18e6, "IU")


def is_il2(name: str, il2_names: Iterable[str] = ()) -> bool:
    """Return True if ``name`` denotes IL-2 (so IU may be converted to mass).

    Parameters
    ----------
    name : str
        Analyte or event-kind name.
    il2_names : iterable of str, optional
        Extra names to treat as IL-2.

    """
    if name in set(il2_names):
        return True
    return re.match(r"^il[-_ ]?2(?![0-9])", name.strip().lower()) is not None


def normalise_unit(unit: str) -> str:
    """Rewrite a unit string into a spelling pint understands."""
    text = unit.strip()
    if text.lower() in _DIMENSIONLESS:
        return "dimensionless"
    text = text.replace("µ", "u").replace("μ", "u").replace("³", "^3").replace("²", "^2")
    text = re.sub(r"([A-Za-z])([23])\b", r"\1^\2", text)
    return re.sub(r"[A-Za-z_]+", lambda m: _TOKEN_ALIASES.get(m.group(0), m.group(0)), text)


def _quantity(unit: str) -> pint.Quantity:
    if not unit.strip():
        raise UnitError("missing unit")
    try:
        return registry().Quantity(1.0, normalise_unit(unit))
    except Exception as exc:  # pint raises several unrelated types for bad strings
        raise UnitError(f"unknown unit {unit!r}") from exc


def _signature(q: pint.Quantity) -> str:
    """Dimensionality, telling mass ratios (mg/kg) apart from pure numbers."""
    if q.dimensionless:
        units = q.unit_items()
        if any(registry().Quantity(1, name).dimensionality == {"[mass]": 1} for name, _ in units):
            return "[mass]/[mass]"
        return "dimensionless"
    return str(q.dimensionality)


@lru_cache(maxsize=1)
def _canonical_by_signature() -> dict[str, tuple[str, str, str]]:
    table = {}
    for quantity, obs_unit, amount_unit in CANONICAL_UNITS:
        table[_signature(_quantity(obs_unit))] = (quantity, obs_unit, amount_unit)
    return table


@lru_cache(maxsize=512)
def conversion(unit: str, role: Role = "observation", il2: bool = False) -> Conversion:
    """Return the factor and canonical unit for values given in ``unit``.

    Parameters
    ----------
    unit : str
        Unit as written in the file, e.g. ``"cm^3"``, ``"pg/mL"``, ``"MIU"``.
    role : {"observation", "amount"}
        Observations and dose amounts have different canonical mass and volume units.
    il2 : bool
        Convert IU to mass with 18 MIU = 1.1 mg (only for IL-2).

    Returns
    -------
    Conversion

    Raises
    ------
    UnitError
        If the unit is unknown or its dimension has no canonical unit.

    """
    q = _quantity(unit)
    n_iu = q.dimensionality.get("[international_unit]", 0)
    if il2 and n_iu:
        q = q * _il2_mass_per_iu() ** n_iu
    entry = _canonical_by_signature().get(_signature(q))
    if entry is None:
        raise UnitError(f"unit {unit!r} ({q.dimensionality}) has no canonical unit here")
    quantity, obs_unit, amount_unit = entry
    target = obs_unit if role == "observation" else amount_unit
    factor = float(f"{q.to(normalise_unit(target)).magnitude:.15g}")  # 1e-3, not 9.99..e-4
    return Conversion(factor=factor, unit=target, quantity=quantity)


def time_factor(unit: str) -> float:
    """Return the factor converting times in ``unit`` to days.

    Raises
    ------
    UnitError
        If ``unit`` is unknown or not a time.

    """
    conv = conversion(unit)
    if conv.unit != TIME_UNIT:
        raise UnitError(f"unit {unit!r} is not a time unit (expected e.g. day, h, min, week)")
    return conv.factor


def allowed_units(analyte: str) -> tuple[str, ...] | None:
    """Return the canonical units an analyte may have, or None if any is accepted."""
    lowered = analyte.strip().lower()
    for pattern, units in ANALYTE_UNITS:
        if re.match(pattern, lowered):
            return units
    return None


def observation_conversion(unit: str, analyte: str, il2_names: Iterable[str] = ()) -> Conversion:
    """Return the conversion for an observation of ``analyte`` given in ``unit``.

    Raises
    ------
    UnitError
        If the unit is unknown, or its dimension does not fit the analyte (e.g. ``g`` for
        ``tumour_volume``).

    """
    conv = conversion(unit, "observation", is_il2(analyte, il2_names))
    allowed = allowed_units(analyte)
    if allowed is not None and conv.unit not in allowed:
        raise UnitError(
            f"unit {unit!r} ({conv.quantity}) does not fit analyte {analyte!r}; "
            f"expected a unit convertible to {' or '.join(allowed)}"
        )
    if conv.unit == TIME_UNIT:
        raise UnitError(f"unit {unit!r} is a time, not an observation unit")
    return conv


def amount_conversion(unit: str, kind: str, il2_names: Iterable[str] = ()) -> Conversion:
    """Return the conversion for a dose amount of event ``kind`` given in ``unit``."""
    conv = conversion(unit, "amount", is_il2(kind, il2_names))
    if conv.unit == TIME_UNIT:
        raise UnitError(f"unit {unit!r} is a time, not an amount")
    return conv


def canonical_units_table() -> list[dict[str, str]]:
    """Return :data:`CANONICAL_UNITS` as records (for documentation and reports)."""
    return [{"quantity": q, "observation_unit": o, "amount_unit": a} for q, o, a in CANONICAL_UNITS]
