import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from conftest import EXAMPLES, MAPPINGS

from bayes.data import (
    DataError,
    combine_studies,
    from_dataset,
    load_netcdf,
    load_study,
    read_mapped,
    read_tidy,
    save_netcdf,
    to_dataset,
)

TABLES = ["observations", "events", "covariates", "groups", "excluded"]


def assert_same(a, b):
    for table in TABLES:
        pdt.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True)
    assert (a.name, a.source) == (b.name, b.source)
    assert a.equals(b)


@pytest.fixture(scope="module")
def example():
    return read_tidy(EXAMPLES / "example_observations.csv", EXAMPLES / "example_events.csv")


def test_dataset_layout(example):
    ds = to_dataset(example)
    assert ds.sizes["subject"] == 12 and ds.sizes["event"] == 1
    assert ds["time"].dims == ("subject", "obs")
    assert int(ds["mask"].sum()) == len(example.observations)
    assert ds["group"].values.tolist()[:4] == ["empty_capsules"] * 4
    assert ds["dose"].values.tolist() == [0.0] * 4 + [1.0] * 4 + [4.0] * 4
    assert dict(zip(ds["analyte"].values, ds["unit"].values, strict=True))["il2_serum"] == "ng/mL"
    assert ds["time"].attrs["units"] == "day"
    assert int(ds["censored"].sum()) == int(example.observations["censored"].sum())
    padded = ~ds["mask"].values
    assert (ds["analyte_index"].values[padded] == -1).all()
    assert np.isnan(ds["value"].values[padded]).all()


def test_netcdf_round_trip_is_lossless(example, tmp_path):
    path = save_netcdf(to_dataset(example), tmp_path / "example.nc")
    back = from_dataset(load_netcdf(path))
    assert_same(back, example)
    assert back.observations["censored"].dtype == bool
    assert back.observations["limit"].isna().sum() == example.observations["limit"].isna().sum()


def test_round_trip_with_ragged_schedules_string_covariates_and_exclusions(write, tmp_path):
    obs = (
        "subject,group,time,analyte,value,unit,censored,limit,sex\n"
        "m1,ctrl,0,tumour_volume,100,mm^3,0,,F\n"
        "m1,ctrl,2,tumour_volume,150,mm^3,0,,F\n"
        "m1,ctrl,1,il2_serum,,pg/mL,1,5,F\n"
        "m2,hi,0,tumour_volume,0.1,cm^3,0,,F\n"
        "m3,hi,0,tumour_volume,,mm^3,0,,\n"
        "m3,hi,1,tumour_volume,5,mm^3,0,,\n"
    )
    study = read_tidy(write("obs.csv", obs))
    assert len(study.excluded) == 1 and study.covariates["sex"].tolist() == ["F", "F", ""]
    back = from_dataset(load_netcdf(save_netcdf(study, tmp_path / "s.nc")))
    assert_same(back, study)


def test_real_data_round_trip(shared_data, tmp_path):
    study = read_mapped(MAPPINGS / "eigenmann2016.toml")
    back = load_study(save_netcdf(study, tmp_path / "e.nc"))  # .nc is detected
    assert_same(back, study)
    assert len(back.excluded) == 991


def test_equals_detects_a_change(example):
    changed = example.observations.copy()
    changed.loc[0, "value"] += 1e-9
    from bayes.data import Study

    other = Study(
        observations=changed,
        events=example.events,
        covariates=example.covariates,
        groups=example.groups,
        excluded=example.excluded,
        source=example.source,
        name=example.name,
    )
    assert not other.equals(example)


def test_from_dataset_rejects_other_datasets():
    import xarray as xr

    with pytest.raises(ValueError, match="not a cytofactory-study"):
        from_dataset(xr.Dataset())


def test_combine_studies_rejects_colliding_ids_or_prefixes(example):
    with pytest.raises(DataError, match="occurs in study"):
        combine_studies([example, example])
    renamed = combine_studies(
        [example, example.__class__(**{**example.__dict__, "name": "b"})], prefix=True
    )
    assert len(renamed.subjects) == 24
    assert renamed.subjects[0] == "example_observations:1"


def test_study_is_frozen(example):
    with pytest.raises(AttributeError):
        example.name = "x"
    assert isinstance(example.observations, pd.DataFrame)
