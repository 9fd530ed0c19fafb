import numpy as np
import pytest

from bayes.data import units
from bayes.data.units import (
    IL2_IU_PER_UG,
    UnitError,
    amount_conversion,
    conversion,
    observation_conversion,
    time_factor,
)


def test_il2_iu_per_ug_follows_18_miu_per_1_1_mg():
    assert IL2_IU_PER_UG == pytest.approx(16363.636, rel=1e-6)
    # 18 MIU of IL-2 is 1.1 mg = 1100 ug
    assert 18e6 * amount_conversion("IU", "il2_dose").factor == pytest.approx(1100.0)
    assert amount_conversion("MIU", "il2_dose").factor == pytest.approx(1100.0 / 18)
    assert amount_conversion("MIU", "il2_dose").unit == "ug"


def test_il2_iu_per_ml_converts_to_ng_per_ml():
    conv = observation_conversion("IU/mL", "il2_serum")
    assert conv.unit == "ng/mL"
    assert 16363.636 * conv.factor == pytest.approx(1000.0, rel=1e-6)  # 1 ug/mL = 1000 ng/mL


def test_iu_of_other_things_is_not_converted():
    assert observation_conversion("IU/mL", "ifng_serum").unit == "IU/mL"
    assert amount_conversion("IU", "dose").unit == "IU"
    assert not units.is_il2("il21_serum")  # IL-21 is not IL-2
    assert units.is_il2("IL-2 serum") and units.is_il2("il2_local")
    assert observation_conversion("IU/mL", "cytokine", il2_names=["cytokine"]).unit == "ng/mL"


@pytest.mark.parametrize(
    ("unit", "factor", "canonical"),
    [
        ("pg/mL", 1e-3, "ng/mL"),
        ("ug/mL", 1e3, "ng/mL"),
        ("ng/L", 1e-3, "ng/mL"),
        ("cm^3", 1e3, "mm^3"),
        ("cm3", 1e3, "mm^3"),
        ("mL", 1e3, "mm^3"),
        ("uL", 1.0, "mm^3"),
        ("µL", 1.0, "mm^3"),
        ("p/s", 1.0, "p/s"),
        ("photons/s", 1.0, "p/s"),
        ("%", 0.01, "1"),
        ("1", 1.0, "1"),
        ("mg/kg", 1.0, "mg/kg"),
    ],
)
def test_observation_units(unit, factor, canonical):
    conv = conversion(unit)
    assert conv.unit == canonical
    assert conv.factor == pytest.approx(factor)


def test_cm3_value_spot_check():
    assert 0.191808 * conversion("cm^3").factor == pytest.approx(191.808)


@pytest.mark.parametrize(
    ("unit", "days"),
    [("h", 1 / 24), ("hours", 1 / 24), ("min", 1 / 1440), ("d", 1), ("day", 1), ("week", 7)],
)
def test_time_units(unit, days):
    assert time_factor(unit) == pytest.approx(days)


def test_amounts_and_rates():
    assert amount_conversion("mg", "dose").factor == pytest.approx(1000.0)
    assert amount_conversion("mg", "dose").unit == "ug"
    assert amount_conversion("ng", "dose").factor == pytest.approx(1e-3)
    rate = amount_conversion("ug/h", "capsule_implant")
    assert (rate.unit, rate.factor) == ("ug/day", pytest.approx(24.0))
    assert conversion("g").unit == "g"  # body weight stays in g


@pytest.mark.parametrize(
    ("unit", "analyte", "fragment"),
    [
        ("g", "tumour_volume", "does not fit analyte 'tumour_volume'"),
        ("parsecs_per_frob", "x", "unknown unit"),
        ("", "x", "missing unit"),
        ("m/s", "x", "no canonical unit"),
        ("h", "x", "time, not an observation unit"),
        ("mm^3", "il2_serum", "does not fit"),
    ],
)
def test_bad_units_raise(unit, analyte, fragment):
    with pytest.raises(UnitError, match=fragment):
        observation_conversion(unit, analyte)


def test_time_factor_rejects_non_time():
    with pytest.raises(UnitError, match="not a time unit"):
        time_factor("mg")


def test_canonical_table_has_one_unit_per_dimension():
    table = units.canonical_units_table()
    signatures = [units._signature(units._quantity(row["observation_unit"])) for row in table]
    assert len(signatures) == len(set(signatures))
    assert np.isfinite([conversion(r["amount_unit"], "amount").factor for r in table]).all()
