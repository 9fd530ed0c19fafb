import runpy
import shutil

import pytest
from conftest import EXAMPLES

from bayes.data import read_tidy


def test_make_example_is_deterministic_and_matches_the_shipped_files(tmp_path):
    script = tmp_path / "make_example.py"
    shutil.copy(EXAMPLES / "make_example.py", script)
    runpy.run_path(str(script), run_name="__main__")
    for name in ["example_observations.csv", "example_events.csv", "example_nonmem.csv"]:
        assert (tmp_path / name).read_text() == (EXAMPLES / name).read_text(), name


def test_example_is_labelled_synthetic_and_has_the_promised_shape():
    assert (EXAMPLES / "example_observations.csv").read_text().startswith("# SYNTHETIC")
    study = read_tidy(EXAMPLES / "example_observations.csv", EXAMPLES / "example_events.csv")
    obs = study.observations
    assert len(study.subjects) == 12 and obs.groupby("group")["subject"].nunique().eq(4).all()
    assert set(study.events["kind"]) == {"capsule_implant"}
    assert set(study.events["unit"]) == {"ug/day"} and (study.events["time"] == 0).all()
    serum = obs[obs.analyte == "il2_serum"]
    assert serum["censored"].any() and (serum.loc[serum.censored, "limit"] == 0.005).all()
    volume = obs[obs.analyte == "tumour_volume"].pivot_table("value", "group", "time")
    high = volume.loc["cf_high"]
    assert high[7] / high[0] == pytest.approx(0.2, abs=0.1)  # ~80% reduction in a week
    assert volume.loc["empty_capsules", 21] > 10 * volume.loc["empty_capsules", 0]
