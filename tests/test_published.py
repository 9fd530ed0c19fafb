import pandas as pd
import pytest

from bayes.data.published import EVIDENCE_GRADES, load_published_results


def test_shipped_table_carries_sources_and_grades():
    table = load_published_results()
    assert table.loc["local_systemic_ratio_meso", "value"] == 150
    assert table.loc["burden_reduction_week1", "value"] == pytest.approx(0.80)
    assert table.loc["responders_week1", "evidence"] == "secondary_report"
    assert table.loc["eradication_with_pd1", "co_treatment"] == "anti-PD-1"
    assert set(table["evidence"]) <= set(EVIDENCE_GRADES)
    assert table["source"].str.len().min() > 5


def test_bad_rows_are_named_by_line_and_column(tmp_path):
    table = pd.read_csv(load_published_results.__defaults__[0], dtype=str)
    table.loc[1, "evidence"] = "hearsay"
    table.loc[3, "value"] = "lots"
    path = tmp_path / "published.csv"
    table.to_csv(path, index=False)
    with pytest.raises(ValueError) as caught:
        load_published_results(path)
    message = str(caught.value)
    assert f"{path}:3:evidence: unknown grade 'hearsay'" in message
    assert f"{path}:5:value: not a number" in message


def test_one_bad_value_does_not_taint_the_other_rows(tmp_path):
    table = pd.read_csv(load_published_results.__defaults__[0], dtype=str)
    table.loc[3, "value"] = "lots"
    path = tmp_path / "published.csv"
    table.to_csv(path, index=False)
    with pytest.raises(ValueError) as caught:
        load_published_results(path)
    assert str(caught.value).count("not a number") == 1
