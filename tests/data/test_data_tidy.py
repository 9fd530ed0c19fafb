import numpy as np
import pytest
from conftest import GOOD_OBS, OBS_HEADER

from bayes.data import DataError, read_tidy

EVENTS = "subject,time,kind,amount,unit\nm1,0,capsule_implant,2,ug/day\nm2,0,dose,1,mg\n"


def issues_of(excinfo):
    return [(i.file.rsplit("/", 1)[-1], i.row, i.column) for i in excinfo.value.issues]


def only_issue(path, **kwargs):
    with pytest.raises(DataError) as excinfo:
        read_tidy(path, **kwargs)
    assert len(excinfo.value.issues) == 1, excinfo.value.format()
    return excinfo.value.issues[0]


def test_good_file_is_converted_and_kept(write):
    study = read_tidy(write("obs.csv", GOOD_OBS), write("ev.csv", EVENTS))
    obs = study.observations
    assert study.subjects == ["m1", "m2"]
    m2_volume = obs[(obs.subject == "m2") & (obs.analyte == "tumour_volume")]
    assert m2_volume["value"].item() == pytest.approx(100.0)  # 0.1 cm^3
    assert set(obs.loc[obs.analyte == "tumour_volume", "unit"]) == {"mm^3"}
    censored = obs[obs.censored]
    assert len(censored) == 1 and censored["limit"].item() == pytest.approx(0.005)  # 5 pg/mL
    assert np.isnan(censored["value"].item())
    assert obs.loc[obs.analyte == "il2_serum", "unit"].unique().tolist() == ["ng/mL"]
    assert study.events["amount"].tolist() == pytest.approx([2.0, 1000.0])
    assert study.events["unit"].tolist() == ["ug/day", "ug"]
    assert study.summary() == {
        "subjects": 2,
        "groups": 2,
        "observations": 5,
        "events": 2,
        "censored": 1,
        "excluded": 0,
    }


def test_rows_are_sorted_by_subject_then_time_with_source_rows(write):
    study = read_tidy(write("obs.csv", GOOD_OBS))
    m1 = study.observations[study.observations.subject == "m1"]
    assert m1["time"].tolist() == [0.0, 1.0, 2.0]
    assert m1["source_row"].tolist() == [2, 4, 3]  # header = line 1


def test_empty_value_is_excluded_and_recorded(write):
    path = write("obs.csv", GOOD_OBS + "m2,hi,2,tumour_volume,,mm^3,0,\n")
    study = read_tidy(path)
    assert len(study.observations) == 5
    row = study.excluded.iloc[0]
    assert (row["source_row"], row["subject"]) == (7, "m2")
    assert "empty value" in row["reason"]


def test_empty_value_can_be_an_error(write):
    path = write("obs.csv", GOOD_OBS + "m2,hi,2,tumour_volume,,mm^3,0,\n")
    issue = only_issue(path, missing_value="error")
    assert (issue.row, issue.column, issue.message) == (7, "value", "missing value")


def test_zero_volume_is_a_measurement_not_censored(write):
    study = read_tidy(write("obs.csv", GOOD_OBS + "m2,hi,3,tumour_volume,0,mm^3,0,\n"))
    zero = study.observations[study.observations.value == 0]
    assert len(zero) == 1 and not zero["censored"].item()


def test_time_units_are_converted_to_days(write):
    text = "subject,group,time,time_unit,analyte,value,unit\nm1,a,36,h,tumour_volume,5,mm^3\n"
    text += "m1,a,2,week,tumour_volume,6,mm^3\n"
    study = read_tidy(write("obs.csv", text))
    assert study.observations["time"].tolist() == pytest.approx([1.5, 14.0])


def test_comment_lines_shift_row_numbers(write):
    text = "# synthetic\n" + OBS_HEADER + "m1,a,0,tumour_volume,abc,mm^3,0,\n"
    issue = only_issue(write("obs.csv", text))
    assert (issue.row, issue.column) == (3, "value")


def test_covariates_and_group_doses(write):
    text = "subject,group,time,analyte,value,unit,dose,dose_unit,sex,weight\n"
    text += "m1,a,0,tumour_volume,5,mm^3,1,mg/kg,F,20\nm1,a,1,tumour_volume,6,mm^3,1,mg/kg,F,20\n"
    text += "m2,b,0,tumour_volume,5,mm^3,,,M,21.5\n"
    study = read_tidy(write("obs.csv", text))
    assert study.covariates.to_dict("list") == {
        "subject": ["m1", "m2"],
        "sex": ["F", "M"],
        "weight": [20.0, 21.5],
    }
    assert study.covariates["weight"].dtype == "float64"
    assert study.groups["dose"].tolist()[0] == 1.0 and np.isnan(study.groups["dose"].iloc[1])
    assert study.groups["dose_unit"].tolist() == ["mg/kg", ""]


@pytest.mark.parametrize(
    ("extra_row", "column", "fragment"),
    [
        ("m3,a,1,tumour_volume,abc,mm^3,0,", "value", "not a number: 'abc'"),
        ("m3,a,1,tumour_volume,-4,mm^3,0,", "value", "negative value"),
        ("m3,a,1,tumour_volume,inf,mm^3,0,", "value", "not finite"),
        ("m3,a,-1,tumour_volume,4,mm^3,0,", "time", "negative time"),
        ("m3,a,,tumour_volume,4,mm^3,0,", "time", "missing time"),
        ("m3,a,1,tumour_volume,4,furlongz,0,", "unit", "unknown unit 'furlongz'"),
        ("m3,a,1,tumour_volume,4,g,0,", "unit", "does not fit analyte"),
        ("m3,a,1,il2_serum,,pg/mL,1,", "censored", "censored row without a limit"),
        ("m3,a,1,il2_serum,,pg/mL,maybe,5", "censored", "expected 0/1"),
        ("m3,a,1,il2_serum,3,pg/mL,1,-5", "limit", "limit must be positive"),
        (",a,1,tumour_volume,4,mm^3,0,", "subject", "missing subject"),
        ("m1,zz,5,tumour_volume,4,mm^3,0,", "group", "constant per subject"),
        ("m1,ctrl,2,tumour_volume,4,mm^3,0,", "time", "duplicate (subject, time, analyte)"),
        ("m1,ctrl,1,tumour_volume,4,mm^3,0", None, "row has 7 fields but the header has 8"),
    ],
)
def test_bad_rows_name_file_row_and_column(write, extra_row, column, fragment):
    issue = only_issue(write("obs.csv", GOOD_OBS + extra_row + "\n"))
    assert issue.file.endswith("obs.csv")
    assert issue.row == 7
    assert issue.column == column
    assert fragment in issue.message


def test_duplicate_points_to_first_occurrence(write):
    issue = only_issue(write("obs.csv", GOOD_OBS + "m1,ctrl,2,tumour_volume,4,mm^3,0,\n"))
    assert "first at" in issue.message and "line 3" in issue.message


def test_missing_columns_are_reported_on_the_header_line(write):
    with pytest.raises(DataError) as excinfo:
        read_tidy(write("obs.csv", "subject,group,time,value\nm1,a,0,1\n"))
    assert issues_of(excinfo) == [("obs.csv", 1, "analyte"), ("obs.csv", 1, "unit")]


def test_covariate_varying_within_subject_is_an_error(write):
    text = "subject,group,time,analyte,value,unit,sex\nm1,a,0,tumour_volume,5,mm^3,F\n"
    text += "m1,a,1,tumour_volume,6,mm^3,M\n"
    issue = only_issue(write("obs.csv", text))
    assert (issue.row, issue.column) == (3, "sex")
    assert "constant per subject" in issue.message


def test_group_dose_must_be_constant_per_group(write):
    text = "subject,group,time,analyte,value,unit,dose,dose_unit\n"
    text += "m1,a,0,tumour_volume,5,mm^3,1,mg/kg\nm2,a,0,tumour_volume,6,mm^3,2,mg/kg\n"
    issue = only_issue(write("obs.csv", text))
    assert (issue.row, issue.column) == (3, "dose")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        (OBS_HEADER, "no data rows"),
        ("subject,subject,group,time,analyte,value,unit\n", "duplicate column name"),
    ],
)
def test_file_level_problems(write, text, message):
    with pytest.raises(DataError) as excinfo:
        read_tidy(write("obs.csv", text))
    assert any(message in i.message for i in excinfo.value.issues)


def test_file_not_found_and_directory(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_tidy(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_tidy(tmp_path)


def test_not_utf8_is_a_data_error(tmp_path):
    path = tmp_path / "obs.csv"
    path.write_bytes(OBS_HEADER.encode() + b"m1,a,0,tumour_volume,5,mm\xff3,0,\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_tidy(path)


def test_all_problems_are_collected_before_raising(write):
    text = OBS_HEADER + "m1,a,x,tumour_volume,-1,bogus,0,\n"
    with pytest.raises(DataError) as excinfo:
        read_tidy(write("obs.csv", text))
    assert {i.column for i in excinfo.value.issues} == {"time", "unit", "value"}
    assert all(i.row == 2 for i in excinfo.value.issues)


def test_problem_list_is_capped_with_a_count(write):
    rows = "".join(f"m{i},a,0,tumour_volume,abc,mm^3,0,\n" for i in range(60))
    with pytest.raises(DataError) as excinfo:
        read_tidy(write("obs.csv", OBS_HEADER + rows))
    assert len(excinfo.value.issues) == 50 and excinfo.value.n_more == 10
    assert excinfo.value.lines()[-1] == "... and 10 more"


def test_events_problems(write):
    obs = write("obs.csv", GOOD_OBS)
    events = "subject,time,kind,amount,unit,duration\nm9,0,dose,1,mg,\nm1,0,dose,-1,mg,\n"
    events += "m1,1,dose,1,IU/kg/s/m,\nm2,1,antibody_dose,200,ug,-3\n"
    with pytest.raises(DataError) as excinfo:
        read_tidy(obs, write("ev.csv", events))
    assert sorted(issues_of(excinfo), key=str) == [
        ("ev.csv", 2, "subject"),
        ("ev.csv", 3, "amount"),
        ("ev.csv", 4, "unit"),
        ("ev.csv", 5, "duration"),
    ]
    orphan = [i for i in excinfo.value.issues if i.column == "subject"][0]
    assert "has no observations" in orphan.message


def test_events_unknown_column_and_duration_units(write):
    obs = write("obs.csv", GOOD_OBS)
    bad = write("ev.csv", "subject,time,kind,amount,unit,route\nm1,0,dose,1,mg,iv\n")
    with pytest.raises(DataError) as excinfo:
        read_tidy(obs, bad)
    assert issues_of(excinfo) == [("ev.csv", 1, "route")]
    good = "subject,time,time_unit,kind,amount,unit,duration\nm1,12,h,dose,1,mg,6\n"
    study = read_tidy(obs, write("ev2.csv", good))
    assert study.events[["time", "duration"]].to_numpy().tolist() == [[0.5, 0.25]]


def test_iu_amounts_of_il2_events_convert_to_ug(write):
    events = "subject,time,kind,amount,unit\nm1,0,il2_dose,18,MIU\n"
    study = read_tidy(write("obs.csv", GOOD_OBS), write("ev.csv", events))
    assert study.events["amount"].item() == pytest.approx(1100.0)
    assert study.events["unit"].item() == "ug"
