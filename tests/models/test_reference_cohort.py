"""The shipped synthetic reference cohort: provenance, published-vs-cohort table, recipe checks."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes.data import DataError, Study, read_tidy
from bayes.models.published_check import CHECKS, compare_with_published, cured, reduction_at
from bayes.models.virtual_cohort import (
    apply_humane_endpoint,
    design_info,
    load_recipe,
    make_cohort,
)

COHORT = Path(__file__).resolve().parents[2] / "datasets" / "cohorts" / "reference"


@pytest.fixture(scope="module")
def recipe():
    return load_recipe(COHORT / "recipe.toml")


@pytest.fixture(scope="module")
def cohort():
    return read_tidy(COHORT / "observations.csv", COHORT / "events.csv")


def test_files_say_they_are_synthetic_and_name_their_seed(recipe):
    for name in ("observations.csv", "events.csv"):
        first = (COHORT / name).read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# SYNTHETIC")
        assert f"seed {recipe.seed}" in first
        assert "Nash" in first


def test_published_table_is_recomputed_from_the_shipped_data(recipe, cohort):
    shipped = pd.read_csv(COHORT / "published_vs_cohort.csv")
    table = compare_with_published(cohort, design_info(recipe))
    assert list(table["id"]) == [check.published_id for check in CHECKS]
    np.testing.assert_allclose(table["cohort_value"], shipped["cohort_value"], rtol=1e-9)
    assert list(table["detail"]) == list(shipped["detail"])
    assert list(table["within"]) == list(shipped["within"])
    # every applicable figure within its tolerance (datasets/README.md)
    misses = table.loc[~table["within"], "id"].tolist()
    assert misses == [], misses


def test_design_matches_the_recipe(recipe, cohort):
    obs = cohort.observations
    sizes = obs.drop_duplicates("subject")["group"].value_counts().to_dict()
    assert sizes == {g: x.mice for g, x in recipe.design.groups.items()}
    burden = obs[obs["analyte"] == "bioluminescence"]
    assert set(burden["time"]) <= set(recipe.design.burden_days)
    censored = burden[burden["censored"]]
    assert (censored["value"] == recipe.design.detection_limit).all()
    pd1 = cohort.events[cohort.events["kind"] == "antibody_dose"]
    assert pd1["subject"].str.startswith("cf_2.5ug_pd1").all()
    assert sorted(set(pd1["time"])) == recipe.design.antibody_days


def test_the_statistics_follow_their_definitions(recipe, cohort):
    info = design_info(recipe)
    red = reduction_at(cohort, info, 7.0)
    burden = cohort.observations[cohort.observations["analyte"] == "bioluminescence"]
    mouse = burden[burden["subject"] == "cf_5ug-1"].set_index("time")["value"]
    assert red["cf_5ug-1"] == pytest.approx(1 - mouse[7.0] / mouse[0.0])
    flags = cured(cohort, info)
    untreated = flags[flags.index.str.startswith("control")]
    assert not untreated.any()
    late = burden[(burden["time"] >= 28) & burden["subject"].isin(flags.index[flags])]
    assert late["censored"].all()


def test_humane_endpoint_removes_later_sessions_only():
    rows = [("m1", t, v) for t, v in ((0.0, 10.0), (2.0, 150.0), (4.0, 250.0), (7.0, 400.0))] + [
        ("m2", t, v) for t, v in ((0.0, 10.0), (2.0, 12.0), (4.0, 15.0), (7.0, 19.0))
    ]
    obs = pd.DataFrame(rows, columns=["subject", "time", "value"]).assign(
        group="g",
        analyte="burden",
        unit="mm^3",
        censored=False,
        limit=np.nan,
        source_row=0,
        source_file="t",
    )
    study = Study(
        observations=obs,
        events=pd.DataFrame(
            columns=[
                "subject",
                "time",
                "kind",
                "amount",
                "unit",
                "duration",
                "source_row",
                "source_file",
            ]
        ),
    )
    kept = apply_humane_endpoint(study, "burden", fold=20.0).observations
    assert list(kept.loc[kept["subject"] == "m1", "time"]) == [0.0, 2.0, 4.0]
    assert list(kept.loc[kept["subject"] == "m2", "time"]) == [0.0, 2.0, 4.0, 7.0]


def test_recipe_errors_name_the_key(tmp_path, recipe):
    text = (COHORT / "recipe.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("humane_endpoint_fold", "humane_endpoint_fould"))
    with pytest.raises(DataError, match="design.humane_endpoint_fould"):
        load_recipe(bad)
    bad.write_text(text.replace('sigma_il2 = "ELISA', 'sigma_il2_typo = "ELISA'))
    with pytest.raises(DataError, match="parameter_reasons is missing an entry for: sigma_il2"):
        load_recipe(bad)
    bad.write_text(text.replace("mice = 9", "mice = 0", 1))
    with pytest.raises(DataError, match="mice"):
        load_recipe(bad)


@pytest.mark.slow
def test_make_cohort_reproduces_the_shipped_data(recipe, cohort):
    """Same recipe, same seed -> the shipped observations (values to 5 significant digits)."""
    study = make_cohort(recipe)
    ours = study.observations.sort_values(["subject", "analyte", "time"]).reset_index(drop=True)
    shipped = cohort.observations.sort_values(["subject", "analyte", "time"])
    shipped = shipped.reset_index(drop=True)
    assert len(ours) == len(shipped)
    np.testing.assert_allclose(ours["value"], shipped["value"], rtol=1e-4)
    assert (ours["censored"].to_numpy() == shipped["censored"].to_numpy()).all()
