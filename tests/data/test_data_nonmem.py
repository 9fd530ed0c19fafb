import numpy as np
import pandas.testing as pdt
import pytest
from conftest import EXAMPLES

from bayes.data import DataError, NonmemMapping, read_nonmem, read_tidy

HEADER = "ID,TIME,DV,AMT,EVID,CMT,MDV,CENS,LIMIT,ARM,WT\n"
CMT = {2: ("il2_serum", "pg/mL"), 3: ("tumour_volume", "mm^3")}
DOSES = {1: ("capsule_implant", "ug/day")}


def nm(write, rows, **kwargs):
    path = write("nm.csv", HEADER + "".join(r + "\n" for r in rows))
    kwargs.setdefault("cmt_doses", DOSES)
    return read_nonmem(path, CMT, **kwargs)


def test_rows_become_observations_events_and_exclusions(write):
    study = nm(
        write,
        [
            "1,0,.,2,1,1,1,0,,hi,20",
            "1,24,100,.,0,3,0,0,,hi,20",
            "1,24,5,.,0,2,0,1,5,hi,20",  # censored at LIMIT
            "1,48,3,.,0,2,0,1,,hi,20",  # censored, DV holds the limit
            "1,48,.,.,0,3,1,0,,hi,20",  # MDV=1 -> excluded
            "1,50,.,.,2,3,1,0,,hi,20",  # EVID=2 -> excluded
        ],
        time_unit="h",
    )
    obs = study.observations
    assert obs["time"].tolist() == [1.0, 1.0, 2.0]
    assert obs["censored"].tolist() == [True, False, True]
    assert obs["limit"].tolist()[0] == pytest.approx(0.005)
    assert obs["limit"].tolist()[2] == pytest.approx(0.003)
    assert study.groups["group"].tolist() == ["hi"]  # ARM picked up as group column
    assert study.covariates["WT"].tolist() == [20.0]
    event = study.events.iloc[0]
    assert (event["kind"], event["amount"], event["unit"]) == ("capsule_implant", 2.0, "ug/day")
    reasons = study.excluded["reason"].tolist()
    assert study.excluded["source_row"].tolist() == [6, 7]
    assert "MDV=1" in reasons[0] and "EVID=2" in reasons[1]


def test_rate_addl_and_ii(write):
    path = write(
        "nm.csv",
        "ID,TIME,DV,AMT,RATE,ADDL,II,EVID,CMT,MDV\n1,0,.,10,5,2,7,1,1,1\n1,1,50,.,.,.,.,0,3,0\n",
    )
    study = read_nonmem(path, CMT, cmt_doses={1: ("antibody_dose", "ug")})
    assert study.events["time"].tolist() == [0.0, 7.0, 14.0]
    assert study.events["duration"].tolist() == [2.0, 2.0, 2.0]  # AMT / RATE
    assert study.events["source_row"].tolist() == [2, 2, 2]


def test_mapping_object_and_default_dose_kind(write):
    mapping = NonmemMapping.model_validate(
        {
            "time_unit": "day",
            "amount_unit": "mg",
            "cmt": {"3": {"analyte": "tumour_volume", "unit": "cm^3"}},
        }
    )
    path = write("nm.csv", "ID,TIME,DV,AMT,EVID,CMT\n7,0,.,1.5,1,1\n7,1,0.2,.,0,3\n")
    study = read_nonmem(path, mapping=mapping)
    assert study.events["kind"].item() == "dose" and study.events["amount"].item() == 1500.0
    assert study.observations["value"].item() == pytest.approx(200.0)
    assert study.groups["group"].tolist() == ["all"]


@pytest.mark.parametrize(
    ("row", "column", "fragment"),
    [
        ("1,24,100,.,0,9,0,0,,hi,20", "CMT", "no analyte mapped for CMT 9"),
        ("1,24,100,.,3,3,0,0,,hi,20", "EVID", "EVID 3/4"),
        ("1,24,100,.,0,3,0,-1,,hi,20", "CENS", "right-censoring"),
        ("1,24,abc,.,0,3,0,0,,hi,20", "DV", "not a number"),
        ("1,-3,100,.,0,3,0,0,,hi,20", "TIME", "negative time"),
        ("1,24,100,.,0,3.5,0,0,,hi,20", "CMT", "whole number"),
        ("1,24,100,.,0,3,0,0,,lo,20", "ARM", "constant per subject"),
        ("1,24,100,.,0,3,0,0,,hi,21", "WT", "constant per subject"),
    ],
)
def test_bad_rows(write, row, column, fragment):
    with pytest.raises(DataError) as excinfo:
        nm(write, ["1,0,.,2,1,1,1,0,,hi,20", "1,12,100,.,0,3,0,0,,hi,20", row])
    issues = excinfo.value.issues
    assert [(i.row, i.column) for i in issues] == [(4, column)], excinfo.value.format()
    assert fragment in issues[0].message


def test_dose_without_amount_unit_and_event_without_observations(write):
    with pytest.raises(DataError) as excinfo:
        nm(write, ["1,0,.,2,1,5,1,0,,hi,20", "2,0,.,2,1,1,1,0,,hi,20", "1,1,4,.,0,3,0,0,,hi,20"])
    found = {(i.row, i.column) for i in excinfo.value.issues}
    assert found == {(2, "AMT"), (3, "ID")}


def test_missing_required_columns(write):
    path = write("nm.csv", "ID,TIME,AMT\n1,0,5\n")
    with pytest.raises(DataError) as excinfo:
        read_nonmem(path, CMT)
    assert [(i.row, i.column) for i in excinfo.value.issues] == [(1, "DV")]


def test_bad_mapping_toml_names_the_key(write):
    path = write("m.toml", '[cmt.1]\nanalyte = "x"\nunits = "mm^3"\n')
    with pytest.raises(DataError) as excinfo:
        read_nonmem(write("nm.csv", "ID,TIME,DV\n1,0,5\n"), mapping=path)
    assert excinfo.value.issues[0].column == "cmt.1.units"
    broken = write("b.toml", "[cmt.1\n")
    with pytest.raises(DataError, match="invalid TOML"):
        read_nonmem(write("nm2.csv", "ID,TIME,DV\n1,0,5\n"), mapping=broken)


def test_bundled_nonmem_example_equals_the_tidy_example():
    tidy = read_tidy(EXAMPLES / "example_observations.csv", EXAMPLES / "example_events.csv")
    nonmem = read_nonmem(EXAMPLES / "example_nonmem.csv", mapping=EXAMPLES / "example_nonmem.toml")
    columns = ["subject", "group", "time", "analyte", "unit", "censored", "limit"]
    pdt.assert_frame_equal(tidy.observations[columns], nonmem.observations[columns])
    measured = ~tidy.observations["censored"]
    np.testing.assert_array_equal(
        tidy.observations.loc[measured, "value"], nonmem.observations.loc[measured, "value"]
    )
    pdt.assert_frame_equal(tidy.events.iloc[:, :6], nonmem.events.iloc[:, :6])
    pdt.assert_frame_equal(tidy.groups, nonmem.groups)
    assert tidy.covariates["baseline_weight"].tolist() == nonmem.covariates["BWT"].tolist()
