import numpy as np
import pandas as pd
import pytest
import xarray as xr
from translate_helpers import TRANSLATION_PRIORS

from bayes.cli import main
from bayes.translate.config import load_scenarios, load_translation_priors, resolve_scenarios
from bayes.translate.exposure import simulate_scenario
from bayes.translate.human_pk import analyse_bolus, iv_bolus_check
from bayes.translate.posterior import load_posterior
from bayes.translate.scaling import human_parameters
from bayes.translate.uncertainty import SOURCES, draw_inputs

CONTRACT = (
    "cmax_serum",
    "auc_serum",
    "cmax_local",
    "auc_local",
    "time_above_effective",
    "tumour_effect",
)
OUTPUT_TIMES = np.arange(0.0, 22.0)


@pytest.fixture(scope="module")
def setting(run_folder, tmp_path_factory):
    path = tmp_path_factory.mktemp("sc") / "scenarios.toml"
    from translate_helpers import SMALL_SCENARIOS

    path.write_text(SMALL_SCENARIOS)
    priors = load_translation_priors()
    scenarios = resolve_scenarios(load_scenarios(path), priors)
    posterior = load_posterior(run_folder, draws=60)
    return priors, scenarios, posterior


def _exposure(priors, scenario, draws, name):
    params = human_parameters(draws, priors, scenario)
    return simulate_scenario(params, scenario, OUTPUT_TIMES, 0.5, keep_curves=False).exposure[name]


def _spread(values, log=True):
    values = np.log(values) if log else values
    return float(np.var(values))


def test_exposure_is_proportional_to_capsule_output(setting):
    priors, scenarios, posterior = setting
    draws = draw_inputs(posterior, priors, 10, seed=1)
    low, high = (_exposure(priors, s, draws, "auc_serum") for s in scenarios[:2])
    np.testing.assert_allclose(high, 2.0 * low, rtol=1e-10)  # linear PK, same random numbers


@pytest.mark.parametrize(
    "source, output, log",
    [
        ("between_patient", "cmax_serum", True),
        ("human_pk", "auc_serum", True),
        ("mouse_posterior", "cmax_local", True),
        ("potency", "time_above_effective", False),
    ],
)
def test_fixing_a_source_shrinks_the_predictions(setting, source, output, log):
    priors, scenarios, posterior = setting
    draws = draw_inputs(posterior, priors, 20, seed=2)
    full = _spread(_exposure(priors, scenarios[0], draws, output), log)
    fixed = _spread(_exposure(priors, scenarios[0], draws.fixed([source]), output), log)
    assert fixed < full


def test_fixing_every_source_leaves_no_uncertainty(setting):
    priors, scenarios, posterior = setting
    draws = draw_inputs(posterior, priors, 5, seed=2).fixed(SOURCES)
    values = _exposure(priors, scenarios[0], draws, "cmax_serum")
    assert np.ptp(values) < 1e-9 * values.mean()


def test_widening_potency_uncertainty_widens_time_above_effective(setting, tmp_path):
    priors, scenarios, posterior = setting
    text = TRANSLATION_PRIORS.read_text().replace(
        'params = { mu = 0.0, sigma = 0.7 }\nunit = "1 (human EC50',
        'params = { mu = 0.0, sigma = 2.0 }\nunit = "1 (human EC50',
    )
    wide_path = tmp_path / "wide.toml"
    wide_path.write_text(text)
    wide = load_translation_priors(wide_path)
    assert wide.potency.ec50_factor.params["sigma"] == 2.0
    draws = draw_inputs(posterior, priors, 20, seed=4)
    narrow_var = _spread(_exposure(priors, scenarios[0], draws, "time_above_effective"), False)
    wide_var = _spread(_exposure(wide, scenarios[0], draws, "time_above_effective"), False)
    assert wide_var > narrow_var


def test_widening_the_clearance_exponent_widens_serum_exposure(setting, tmp_path):
    priors, scenarios, posterior = setting
    text = TRANSLATION_PRIORS.read_text().replace(
        "params = { mu = 0.68, sigma = 0.06, lower = 0.5, upper = 0.9 }",
        "params = { mu = 0.68, sigma = 0.2, lower = 0.3, upper = 1.1 }",
    )
    path = tmp_path / "wide.toml"
    path.write_text(text.replace('method = "combine"', 'method = "allometry"'))
    narrow_path = tmp_path / "narrow.toml"
    narrow_path.write_text(
        TRANSLATION_PRIORS.read_text().replace('method = "combine"', 'method = "allometry"')
    )
    narrow, wide = load_translation_priors(narrow_path), load_translation_priors(path)
    draws = draw_inputs(posterior, narrow, 10, seed=5)
    scenario = scenarios[0]
    assert _spread(_exposure(wide, scenario, draws, "auc_serum")) > _spread(
        _exposure(narrow, scenario, draws, "auc_serum")
    )


def test_bolus_analysis_recovers_known_biexponential_parameters():
    minutes = np.arange(0.0, 721.0)
    alpha, beta = np.log(2) / 12.9, np.log(2) / 85.0
    dose, v1, fraction = 1e6, 2800.0, 0.955
    curve = (
        dose / v1 * (fraction * np.exp(-alpha * minutes) + (1 - fraction) * np.exp(-beta * minutes))
    )
    result = analyse_bolus(minutes, curve[None, :], dose)
    clearance = v1 / (fraction / alpha + (1 - fraction) / beta)
    assert result["half_life_beta_min"][0] == pytest.approx(85.0, rel=1e-4)
    assert result["half_life_alpha_min"][0] == pytest.approx(12.9, rel=0.02)
    assert result["clearance_ml_per_min"][0] == pytest.approx(clearance, rel=0.01)
    assert clearance == pytest.approx(120.0, rel=0.02)  # Konrad 1990 numbers are consistent


@pytest.mark.parametrize("method", ["combine", "human"])
def test_human_systemic_pk_reproduces_published_aldesleukin_iv_bolus(setting, tmp_path, method):
    _, _, posterior = setting
    path = tmp_path / "p.toml"
    path.write_text(
        TRANSLATION_PRIORS.read_text().replace('method = "combine"', f'method = "{method}"')
    )
    priors = load_translation_priors(path)
    check = iv_bolus_check(draw_inputs(posterior, priors, 2, seed=6), priors).set_index("quantity")
    for quantity in ("half_life_alpha_min", "half_life_beta_min", "clearance_ml_per_min"):
        row = check.loc[quantity]
        assert row["published_low"] <= row["median"] <= row["published_high"], (quantity, row)
        assert row["within"]


def test_translate_command_writes_the_contract(tmp_path, scenario_file, run_folder, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "translate",
            str(scenario_file),
            "--posterior",
            str(run_folder),
            "--out",
            str(out),
            "--no-report",
        ]
    )
    assert code == 0, capsys.readouterr().err
    tree = xr.open_datatree(out / "predictions.nc", engine="netcdf4")
    exposure = tree["exposure"].to_dataset()
    assert exposure[CONTRACT[0]].dims == ("draw", "scenario", "patient")
    assert exposure.sizes == {"draw": 60, "scenario": 3, "patient": 12}
    for name in CONTRACT:
        assert exposure[name].attrs["units"] and exposure[name].attrs["long_name"]
        assert np.isfinite(exposure[name].values).all()
    assert (
        0.0 <= float(exposure["tumour_effect"].min()) <= float(exposure["tumour_effect"].max()) <= 1
    )
    assert list(exposure["scenario"].values) == [
        "peritoneal_100",
        "peritoneal_200",
        "pleural_total_50",
    ]
    assert np.isnan(exposure["capsules"].values[2]) and exposure["capsules"].values[0] == 100
    assert exposure["total_output_ug_per_day"].values.tolist() == [100.0, 200.0, 50.0]
    assert exposure["cavity"].values.tolist() == ["peritoneal", "peritoneal", "pleural"]
    for key in ("scenario_file", "posterior_file", "seed", "version"):
        assert key in tree.attrs
    assert tree.attrs["seed"] == 3
    assert "variance_decomposition" in tree.children
    summary = pd.read_csv(out / "summary.csv")
    assert {"p_exceed_sc_peak_low", "cmax_serum"} <= set(summary["quantity"])
    risk = tree["risk"].to_dataset()
    # probability = mean over draws of the share of patients over the reference
    expected = float(
        (
            exposure["cmax_serum"].sel(scenario="peritoneal_200")
            > float(risk["reference_value"].sel(reference="sc_peak_low"))
        ).mean()
    )
    assert float(
        risk["probability"].sel(scenario="peritoneal_200", reference="sc_peak_low")
    ) == pytest.approx(expected, abs=1e-6)


def test_report_writes_figures_and_html(tmp_path, scenario_file, run_folder):
    from bayes.report.translation_report import write_translation_report
    from bayes.translate.run import run_translation

    translation = run_translation(scenario_file, run_folder, draws=20, patients=6)
    paths = write_translation_report(translation, tmp_path)
    names = {p.name for p in paths}
    assert {
        "fan_charts.png",
        "dose_exposure.png",
        "dose_risk.png",
        "human_pk_check.png",
        "variance_decomposition.png",
        "report.html",
    } <= names
    page = (tmp_path / "report.html").read_text()
    assert "Human i.v. bolus check" in page and "peritoneal_200" in page


@pytest.mark.slow
def test_speed_1000_draws_10_scenarios_200_patients_61_days(tmp_path):
    """Issue 6 target: <= 60 s on 2 cores for the simulation (measured, printed)."""
    from translate_helpers import MOUSE_PRIORS, ROOT

    from bayes.translate.run import run_translation

    translation = run_translation(
        ROOT / "workflows/human_dosing.toml", MOUSE_PRIORS, decomposition=False
    )
    exposure = translation.tree["exposure"]
    assert exposure.sizes == {"draw": 1000, "scenario": 10, "patient": 200}
    print(f"simulation {translation.seconds_simulation:.1f} s")
    assert translation.seconds_simulation <= 60.0
