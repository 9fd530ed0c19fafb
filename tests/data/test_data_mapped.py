import shutil

import numpy as np
import pytest
from conftest import MAPPINGS, SHARED_DATA

from bayes.data import DataError, load_mapping, read_mapped

EIGENMANN = MAPPINGS / "eigenmann2016.toml"
INSPECTUMOURS = MAPPINGS / "inspectumours.toml"


@pytest.fixture(scope="module")
def eigenmann():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not present (fresh clone): real-data tests need it")
    return read_mapped(EIGENMANN)


def tumour_subjects(study, group):
    obs = study.observations
    return obs.loc[(obs.group == group) & (obs.analyte == "tumour_volume"), "subject"].nunique()


def test_eigenmann_counts_groups_and_doses(eigenmann):
    assert tumour_subjects(eigenmann, "control") == 8
    assert [tumour_subjects(eigenmann, g) for g in ["low", "medium", "high"]] == [8, 8, 6]
    pk = eigenmann.observations[eigenmann.observations.group == "pk_single"]
    assert pk["subject"].nunique() == 30
    assert "tumour_volume" not in set(pk["analyte"])
    assert len(eigenmann.subjects) == 8 + 8 + 8 + 6 + 30  # ids do not collide across files
    doses = dict(zip(eigenmann.groups["group"], eigenmann.groups["dose"], strict=True))
    assert doses == {"control": 0, "low": 6.25, "medium": 25, "high": 100, "pk_single": 100}
    assert set(eigenmann.groups["dose_unit"]) == {"mg/kg"}


def test_eigenmann_units_and_spot_values(eigenmann):
    assert eigenmann.units == {
        "body_weight": "g",
        "tumour_volume": "mm^3",
        "plasma_concentration": "ng/mL",
    }
    obs = eigenmann.observations
    first = obs[(obs.subject == "40") & (obs.analyte == "tumour_volume") & (obs.time == 0)]
    assert first["value"].item() == pytest.approx(191.808)  # 0.191808 cm^3
    assert first["source_row"].item() == 2
    assert first["source_file"].item().endswith("lxf_control_growth.csv")


def test_eigenmann_doses_and_exclusions(eigenmann):
    events = eigenmann.events
    assert set(events["kind"]) == {"dose"} and set(events["unit"]) == {"ug"}
    assert len(events) == 112 + 112 + 51 + 30
    first = events[(events.subject == "6") & (events.time == 3)]
    assert first["amount"].item() == pytest.approx(2450.0)  # 2.45 mg
    pk_dose = events[events.subject == "1"]
    assert pk_dose["amount"].item() == pytest.approx(2860.0)  # on the body-weight row
    excluded = eigenmann.excluded
    assert len(excluded) == 991 and set(excluded["reason"]) == {"empty value (no measurement)"}
    # the first empty Value row of the high-dose file (ID 6, t=14.02 d) is line 9
    high = excluded[excluded.source_file.str.endswith("lxf_high_erlotinib_dose.csv")]
    assert 9 in set(high["source_row"])


def test_inspectumours_subjects_groups_and_censored_placeholders(shared_data, tmp_path):
    study = read_mapped(INSPECTUMOURS)
    assert len(study.subjects) == 130
    assert study.covariates["study"].nunique() == 3
    assert study.observations["subject"].str.startswith("Study ").all()
    assert study.observations["group"].nunique() == 10  # Study 3 has two control groups
    assert study.units == {"tumour_volume": "mm^3"}
    assert len(study.observations) == 1460 and len(study.excluded) == 2
    assert sorted(study.excluded["source_row"]) == [879, 934]
    assert study.excluded["reason"].str.startswith("excluded by the mapping: transcription").all()
    assert np.isnan(study.groups["dose"]).all()
    # placeholders <= 15 mm^3 (0.523, 1, 14, 14.13, 15) are censored at 15, nothing dropped
    obs = study.observations
    assert obs["censored"].sum() == 313
    assert (obs.loc[obs.censored, "limit"] == 15.0).all()
    assert (obs.loc[~obs.censored, "value"] > 15.0).all()
    # a zero volume (not in the file) is censored too, with its source row
    source = shared_data / "inspectumours" / "example_data.csv"
    lines = source.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",0"
    (tmp_path / "example_data.csv").write_text("\n".join(lines) + "\n")
    zeroed = read_mapped(INSPECTUMOURS, data_root=tmp_path)
    zero = zeroed.observations[zeroed.observations.value == 0]
    assert len(zero) == 1 and zero["censored"].item() and zero["source_row"].item() == 2


def test_detection_limit_censors_values_at_or_below_it(write):
    write("one.csv", "site,animal,hours,vol,dose_mg\nA,1,0,0.01,\nA,1,24,0.02,\nA,1,48,0.5,\n")
    write("two.csv", "site,animal,hours,vol,dose_mg\nB,1,0,0,\n")
    limit = "detection_limits = { tumour_volume = 0.02 }"  # cm^3, the file's unit
    study = read_mapped(write("m.toml", mapping_text(limit)))
    obs = study.observations
    assert obs["censored"].tolist() == [True, True, False, True]
    assert obs.loc[obs.censored, "limit"].tolist() == pytest.approx([20.0, 20.0, 20.0])  # mm^3
    assert obs.loc[~obs.censored, "value"].tolist() == pytest.approx([500.0])
    with pytest.raises(DataError) as excinfo:
        read_mapped(write("m2.toml", mapping_text("detection_limits = { tumour_volume = -1 }")))
    assert excinfo.value.issues[0].column == "detection_limits.tumour_volume"


def test_excluded_lines_are_listed_with_their_reason(write):
    write("one.csv", "site,animal,hours,vol,dose_mg\nA,1,0,0.01,\nA,1,24,0.02,\n")
    write("two.csv", "site,animal,hours,vol,dose_mg\nB,1,0,0.3,\n")
    exclude = '[[files.exclude]]\nline = 3\nreason = "typo"\n'
    text = mapping_text().replace('group = "a"\n', 'group = "a"\n' + exclude)
    study = read_mapped(write("m.toml", text))
    assert study.observations["value"].tolist() == pytest.approx([10.0, 300.0])
    assert study.excluded[["source_row", "subject", "reason"]].values.tolist() == [
        [3, "A-1", "excluded by the mapping: typo"]
    ]
    with pytest.raises(DataError) as excinfo:
        read_mapped(write("m2.toml", text.replace("line = 3", "line = 7")))
    issue = excinfo.value.issues[0]
    assert issue.file.endswith("one.csv") and issue.row == 7 and "no observation" in issue.message


def test_data_root_override_and_missing_root(tmp_path):
    with pytest.raises(DataError) as excinfo:
        read_mapped(EIGENMANN, data_root=tmp_path)
    assert len(excinfo.value.issues) == 5
    assert all(i.message == "file not found" for i in excinfo.value.issues)
    assert excinfo.value.issues[0].file.endswith("lxf_control_growth.csv")


def mapping_text(extra=""):
    return f"""
name = "t"
{extra}
[columns]
subject = ["site", "animal"]
time = "hours"
value = "vol"
covariates = ["site"]
[fixed]
analyte = "tumour_volume"
unit = "cm^3"
time_unit = "h"
[[doses]]
amount = "dose_mg"
unit = "mg"
kind = "antibody_dose"
[groups.a]
dose = 10
dose_unit = "mg/kg"
[[files]]
path = "one.csv"
group = "a"
[[files]]
path = "two.csv"
group = "b"
"""


def test_mapped_joins_ids_converts_and_records_everything(write):
    write("one.csv", "site,animal,hours,vol,dose_mg\nA,1,0,0.1,1\nA,1,24,,\nA,2,0,0.2,\n")
    write("two.csv", "site,animal,hours,vol,dose_mg\nB,1,0,0.3,\nB,1,48,0.4,\n")
    study = read_mapped(write("m.toml", mapping_text()))
    assert study.subjects == ["A-1", "A-2", "B-1"]
    assert study.observations["value"].tolist() == pytest.approx([100, 200, 300, 400])
    assert study.observations["time"].tolist() == [0, 0, 0, 2]
    assert study.events[["subject", "kind", "amount"]].values.tolist() == [
        ["A-1", "antibody_dose", 1000.0]
    ]
    assert study.excluded[["source_row", "subject"]].values.tolist() == [[3, "A-1"]]
    assert study.groups["dose"].tolist()[0] == 10 and np.isnan(study.groups["dose"].iloc[1])
    assert study.covariates["site"].tolist() == ["A", "A", "B"]


def test_subject_collision_error_and_prefix(write):
    write("one.csv", "site,animal,hours,vol,dose_mg\nA,1,0,0.1,\n")
    write("two.csv", "site,animal,hours,vol,dose_mg\nA,1,0,0.3,\n")
    with pytest.raises(DataError) as excinfo:
        read_mapped(write("m.toml", mapping_text()))
    issue = excinfo.value.issues[0]
    assert issue.file.endswith("two.csv") and issue.column == "site+animal"
    assert "subject_collision" in issue.message
    study = read_mapped(write("m2.toml", mapping_text('subject_collision = "prefix"')))
    assert study.subjects == ["one-A-1", "two-A-1"]


def test_missing_mapped_column_and_declared_group_without_subjects(write):
    write("one.csv", "site,animal,hours,volume,dose_mg\nA,1,0,0.1,\n")
    write("two.csv", "site,animal,hours,vol,dose_mg\nB,1,0,0.3,\n")
    with pytest.raises(DataError) as excinfo:
        read_mapped(write("m.toml", mapping_text()))
    assert [(i.row, i.column) for i in excinfo.value.issues] == [(1, "vol"), (None, "group")]


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ('name = "x"\nfiles = []\n', "files", "at least 1"),
        ('name = "x"\nbogus = 1\n[[files]]\npath = "a.csv"\n', "bogus", "Extra inputs"),
        (
            'name = "x"\n[[files]]\npath = "a.csv"\n[files.columns]\ntime = 3\n',
            "files.0.columns.time",
            "valid string",
        ),
        ("name = [\n", None, "invalid TOML"),
    ],
)
def test_invalid_mapping_files(write, text, column, fragment):
    with pytest.raises(DataError) as excinfo:
        load_mapping(write("m.toml", text))
    issue = excinfo.value.issues[0]
    if column:
        assert issue.column == column
    if fragment:
        assert fragment in issue.message


def test_mapping_without_required_fields(write):
    write("a.csv", "x\n1\n")
    with pytest.raises(DataError) as excinfo:
        read_mapped(write("m.toml", 'name = "x"\n[[files]]\npath = "a.csv"\n'))
    columns = {i.column for i in excinfo.value.issues}
    assert {"subject", "time", "value", "group", "analyte", "unit"} <= columns


def test_shipped_mappings_validate():
    for path in MAPPINGS.glob("*.toml"):
        mapping = load_mapping(path)
        assert mapping.files and mapping.root.startswith("../../../shared/data/")


def test_relative_root_resolves_from_mapping_file(shared_data, tmp_path):
    target = tmp_path / "maps"
    target.mkdir()
    shutil.copy(INSPECTUMOURS, target / "i.toml")
    text = (
        (target / "i.toml")
        .read_text()
        .replace(
            'root = "../../../shared/data/inspectumours"',
            f'root = "{shared_data / "inspectumours"}"',
        )
    )
    (target / "i.toml").write_text(text)
    assert len(read_mapped(target / "i.toml").subjects) == 130
