"""Prior objects, the validated TOML loader and the shipped prior sets."""

import copy
import json
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pymc as pm
import pytest
from pydantic import ValidationError
from pytensor.compile.mode import Mode
from scipy import integrate, stats

from bayes.models.priors import (
    DISTRIBUTIONS,
    Prior,
    PriorError,
    PriorSet,
    omega_name,
    shipped_prior_sets,
)

ROOT = Path(__file__).resolve().parents[2]
CF_IL2 = ROOT / "priors" / "cf_il2_mouse.toml"
TUMOUR = ROOT / "priors" / "tumour_growth_generic.toml"
LITERATURE = ROOT.parent / "shared" / "LITERATURE.md"
FAST_DRAW = Mode(linker="py", optimizer="fast_compile")  # forward draws need no compiled graph

CF_IL2_REQUIRED = [
    "rho", "k_fade", "k_sys", "v_sys", "v_local", "local_systemic_ratio", "absorbed_fraction",
    "ec50", "hill", "k_effect", "growth_rate", "gompertz_beta", "carrying_log_capacity",
    "kill_rate", "pd1_enhancement", "k_pd1", "memory_rate", "extinction_log_burden",
    "sigma_burden", "nu_burden", "sigma_il2", "log_burden0",
]  # fmt: skip

VALID = """\
name = "toy"
description = "toy prior set"
model_family = "toy"

[parameters.k_fade]
distribution = "LogNormal"
params = { mu = -3.4, sigma = 0.8 }
unit = "1/day"
positive = true
source = "rationale: test"
rationale = "median 0.033 /day"

[parameters.rho]
distribution = "LogNormal"
params = { mu = 0.0, sigma = 0.5 }
unit = "1"
positive = true
source = "rationale: test"

[parameters.rho.random_effect]
kind = "lognormal"
omega = { distribution = "HalfNormal", params = { sigma = 0.4 }, unit = "1", source = "rationale" }

[parameters.fraction]
distribution = "Uniform"
params = { lower = 0.0, upper = 1.0 }
unit = "1"
source = "rationale: test"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def _load_error(path: Path, required: list[str] | None = None) -> PriorError:
    with pytest.raises(PriorError) as info:
        PriorSet.load(path, required=required)
    return info.value


# ----------------------------------------------------------------------------- shipped sets


@pytest.mark.parametrize("path", [CF_IL2, TUMOUR], ids=lambda p: p.stem)
def test_shipped_sets_load_and_every_prior_has_unit_and_source(path):
    prior_set = PriorSet.load(path)
    assert prior_set.name == path.stem
    assert path.stem in shipped_prior_sets()
    for key, prior in prior_set.parameters.items():
        for p in (prior, prior.random_effect.omega if prior.random_effect else prior):
            assert p.unit.strip() and p.source.strip(), key
            assert p.source.startswith(("LITERATURE.md: ", "rationale: ")), (key, p.source)


def test_cf_il2_set_has_every_model_parameter_and_the_required_random_effects():
    prior_set = PriorSet.load(CF_IL2, required=CF_IL2_REQUIRED)
    effects = prior_set.random_effects
    assert {"rho", "kill_rate", "growth_rate", "log_burden0"} <= effects.keys()
    assert effects["log_burden0"].kind == "normal"  # additive: it is already a log quantity
    assert effects["rho"].kind == "lognormal"
    # one study-level centre: a per-mouse first image would centre the prior and be fitted
    assert prior_set["log_burden0"].offset_from == "study_log_burden_reference"


@pytest.mark.skipif(not LITERATURE.exists(), reason="../shared/LITERATURE.md not present")
@pytest.mark.parametrize("path", [CF_IL2, TUMOUR], ids=lambda p: p.stem)
def test_literature_citations_name_an_existing_literature_section(path):
    sections = re.findall(r"^## (.+)$", LITERATURE.read_text(), flags=re.MULTILINE)
    for key, prior in PriorSet.load(path).parameters.items():
        if prior.source.startswith("LITERATURE.md: "):
            section = prior.source.removeprefix("LITERATURE.md: ").split(" / ")[0]
            assert section in sections, (key, section)


# ----------------------------------------------------------------------------- malformed files

MALFORMED = {
    "unknown distribution": (
        ('"LogNormal"\nparams = { mu = -3.4', '"Lognormal"\nparams = { mu = -3.4'),
        "parameters.k_fade.distribution: "
        "unknown distribution 'Lognormal' (did you mean 'LogNormal'?)",
    ),
    "missing distribution parameter": (
        ("{ mu = -3.4, sigma = 0.8 }", "{ mu = -3.4 }"),
        "parameters.k_fade.params.sigma: missing (LogNormal needs mu, sigma)",
    ),
    "extra distribution parameter": (
        ("{ mu = -3.4, sigma = 0.8 }", "{ mu = -3.4, sigma = 0.8, scale = 2.0 }"),
        "parameters.k_fade.params.scale: unexpected parameter for LogNormal",
    ),
    "sigma not positive": (
        ("{ mu = -3.4, sigma = 0.8 }", "{ mu = -3.4, sigma = 0.0 }"),
        "parameters.k_fade.params.sigma: must be > 0, got 0",
    ),
    "uniform lower >= upper": (
        ("{ lower = 0.0, upper = 1.0 }", "{ lower = 1.0, upper = 1.0 }"),
        "parameters.fraction.params: lower (1) must be < upper (1)",
    ),
    "declared bounds lower >= upper": (
        ('"rationale: test"\n', '"rationale: test"\nlower = 2.0\nupper = 1.0\n'),
        "parameters.k_fade.upper: lower (2) must be < upper (1)",
    ),
    "normal prior on positive rate": (
        ('"LogNormal"\nparams = { mu = -3.4', '"Normal"\nparams = { mu = -3.4'),
        "parameters.k_fade.distribution: the parameter is declared positive = true but "
        "Normal(mu=-3.4, sigma=0.8) puts mass below 0",
    ),
    "support outside declared upper bound": (
        ("{ lower = 0.0, upper = 1.0 }", "{ lower = 0.0, upper = 2.0 }\nupper = 1.0"),
        "parameters.fraction.distribution: the parameter is declared upper = 1 but",
    ),
    "missing source": (
        ('positive = true\nsource = "rationale: test"\nrationale', "positive = true\nrationale"),
        "parameters.k_fade.source: missing required key",
    ),
    "blank source": (
        ('true\nsource = "rationale: test"\nrationale', 'true\nsource = " "\nrationale'),
        "parameters.k_fade.source: must not be blank",
    ),
    "missing unit": (
        ('unit = "1/day"\n', ""),
        "parameters.k_fade.unit: missing required key",
    ),
    "misspelt key": (
        ('rationale = "median', 'rationale_ = "median'),
        "parameters.k_fade.rationale_: unknown key (did you mean 'rationale'?)",
    ),
    "misspelt top-level key": (
        ("description =", "descripton ="),
        "descripton: unknown key (did you mean 'description'?)",
    ),
    "omega prior with negative support": (
        (
            'distribution = "HalfNormal", params = { sigma = 0.4 }',
            'distribution = "Normal", params = { mu = 0.0, sigma = 0.4 }',
        ),
        "parameters.rho.random_effect.omega.distribution: omega is an SD",
    ),
    "wrong value type": (
        ("sigma = 0.8", 'sigma = "0.8"'),
        "parameters.k_fade.params.sigma: Input should be a valid number",
    ),
    "bad random-effect kind": (
        ('kind = "lognormal"', 'kind = "log-normal"'),
        "parameters.rho.random_effect.kind: Input should be 'lognormal' or 'normal'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_file_names_file_and_key_path(tmp_path, case):
    (old, new), expected = MALFORMED[case]
    assert old in VALID, "test case no longer matches the template"
    path = _write(tmp_path, VALID.replace(old, new, 1))
    error = _load_error(path)
    assert f"{path}: {expected}" in str(error), str(error)


def test_valid_template_loads(tmp_path):
    prior_set = PriorSet.load(_write(tmp_path, VALID))
    assert list(prior_set.parameters) == ["k_fade", "rho", "fraction"]
    assert "rho" in prior_set and prior_set["rho"].random_effect is not None


def test_missing_required_parameter_is_named_with_a_spelling_hint(tmp_path):
    error = _load_error(_write(tmp_path, VALID), required=["k_fade", "k_fad", "kill_rate"])
    assert len(error.problems) == 2
    assert any("parameters.kill_rate: missing: required by the model" in p for p in error.problems)
    assert any("parameters.k_fad: missing" in p and "'k_fade'" in p for p in error.problems)


def test_all_problems_are_collected_in_one_error(tmp_path):
    text = (
        VALID.replace('"LogNormal"', '"Lognormal"', 1)  # k_fade
        .replace("sigma = 0.5", "sigma = -0.5", 1)  # rho
        .replace('unit = "1"\nsource', 'unitt = "1"\nsource', 1)  # fraction: typo, so no unit
    )
    error = _load_error(_write(tmp_path, text), required=["memory_rate"])
    paths = [p.split(": ")[1] for p in error.problems]
    assert paths == [
        "parameters.k_fade.distribution",
        "parameters.rho.params.sigma",
        "parameters.fraction.unit",
        "parameters.fraction.unitt",
        "parameters.memory_rate",
    ]
    assert str(error).startswith(f"{tmp_path / 'bad.toml'}: 5 problems in prior set")


def test_invalid_toml_and_missing_file_raise_prior_error(tmp_path):
    assert "invalid TOML" in str(_load_error(_write(tmp_path, "name = ")))
    assert "cannot read" in str(_load_error(tmp_path / "absent.toml"))


def test_truncated_normal_needs_a_bound_and_lognormal_effect_needs_positive_parameter():
    base = {"unit": "1", "source": "rationale: test"}
    with pytest.raises(ValidationError, match="needs at least one of lower, upper"):
        Prior(distribution="TruncatedNormal", params={"mu": 0, "sigma": 1}, **base)
    data = PriorSet.load(CF_IL2).to_dict()
    data["parameters"]["rho"].update(distribution="Normal", params={"mu": 1, "sigma": 0.1})
    data["parameters"]["rho"]["positive"] = False
    with pytest.raises(PriorError, match=r"parameters\.rho\.random_effect\.kind: a lognormal"):
        PriorSet.from_dict(data)


# ----------------------------------------------------------------------------- objects


def test_prior_set_is_immutable_and_picklable():
    prior_set = PriorSet.load(CF_IL2)
    assert pickle.loads(pickle.dumps(prior_set)) == prior_set  # dask ships it to workers
    assert copy.deepcopy(prior_set) == prior_set
    with pytest.raises(TypeError):
        prior_set.parameters["extra"] = prior_set["k_sys"]  # type: ignore[index]
    prior = prior_set["k_sys"]
    with pytest.raises(ValidationError):
        prior.unit = "1/h"
    with pytest.raises(TypeError):
        prior.params["mu"] = 0.0  # type: ignore[index]


def test_to_dict_from_dict_round_trip_and_json(tmp_path):
    prior_set = PriorSet.load(CF_IL2)
    data = prior_set.to_dict()
    assert PriorSet.from_dict(data) == prior_set
    assert PriorSet.from_json(prior_set.to_json()) == prior_set
    assert json.loads(prior_set.to_json()) == data
    assert "None" not in repr(data)  # TOML has no null: the dict mirrors the file layout
    changed = json.loads(prior_set.to_json())
    changed["parameters"]["k_sys"]["params"]["sigma"] = 0.61
    assert PriorSet.from_dict(changed) != prior_set


def test_table_reports_natural_unit_quantiles():
    table = PriorSet.load(CF_IL2).table().set_index("parameter")
    assert list(table.columns) == [
        "distribution", "parameters", "median", "q05", "q95", "unit", "random_effect", "source",
    ]  # fmt: skip
    k_sys = table.loc["k_sys"]
    assert k_sys["median"] == pytest.approx(
        math.sqrt(math.log(2) ** 2 / (1.6 / 1440 * 9 / 1440)), rel=0.01
    )
    assert k_sys["q05"] < k_sys["median"] < k_sys["q95"]
    assert table.loc["omega_rho", "distribution"] == "HalfNormal"
    assert table.loc["rho", "random_effect"] == "lognormal"


def test_sample_is_reproducible_per_parameter_and_includes_omegas():
    prior_set = PriorSet.load(CF_IL2)
    draws = prior_set.sample(500, seed=3)
    assert omega_name("kill_rate") in draws and draws["k_sys"].shape == (500,)
    assert np.array_equal(draws["k_sys"], prior_set.sample(500, seed=3)["k_sys"])
    assert not np.array_equal(draws["k_sys"], prior_set.sample(500, seed=4)["k_sys"])
    smaller = PriorSet.from_dict(
        {**prior_set.to_dict(), "parameters": {"k_sys": prior_set.to_dict()["parameters"]["k_sys"]}}
    )
    assert np.array_equal(smaller.sample(500, seed=3)["k_sys"], draws["k_sys"])
    assert (draws[omega_name("rho")] >= 0).all()


def test_to_pymc_needs_a_model_and_uses_dims():
    prior = PriorSet.load(CF_IL2)["rho"]
    with pytest.raises(TypeError, match="needs a model"):
        prior.to_pymc("rho")
    model = pm.Model(coords={"subject": ["a", "b", "c"]})
    variable = prior.to_pymc("rho", dims="subject", model=model)
    assert model.named_vars_to_dims["rho"] == ("subject",)
    assert pm.draw(variable, random_seed=1, mode=FAST_DRAW).shape == (3,)


SCIPY_VS_PYMC = {
    "LogNormal": {"mu": 0.4, "sigma": 0.6},
    "HalfStudentT": {"nu": 3.0, "sigma": 2.0},
    "Gamma": {"alpha": 2.0, "beta": 0.1},
    "Exponential": {"lam": 2.5},
    "Beta": {"alpha": 2.0, "beta": 5.0},
    "TruncatedNormal": {"mu": -11.5, "sigma": 2.5, "upper": -2.3},
    "StudentT": {"nu": 4.0, "mu": 1.0, "sigma": 0.5},
}


def test_scipy_distribution_matches_pymc_draws():
    assert set(SCIPY_VS_PYMC) <= set(DISTRIBUTIONS)
    priors = {
        name: Prior(distribution=name, params=params, unit="1", source="rationale: test")
        for name, params in SCIPY_VS_PYMC.items()
    }
    with pm.Model(coords={"replicate": range(4000)}):
        variables = [prior.to_pymc(name, dims="replicate") for name, prior in priors.items()]
    draws = pm.draw(variables, random_seed=11, mode=FAST_DRAW)
    for (name, prior), sample in zip(priors.items(), draws, strict=True):
        frozen = prior.to_scipy()
        assert stats.kstest(sample, frozen.cdf).pvalue > 1e-3, name
        assert np.quantile(sample, 0.9) == pytest.approx(frozen.ppf(0.9), rel=0.1), name
    # the check has power: Gamma with beta read as a scale instead of a rate is rejected
    gamma_draws = draws[list(priors).index("Gamma")]
    assert stats.kstest(gamma_draws, stats.gamma(2.0, scale=0.1).cdf).pvalue < 1e-6


# ----------------------------------------------------------------------------- plausibility


def _medians(prior_set: PriorSet) -> dict[str, float]:
    return {key: float(prior.to_scipy().median()) for key, prior in prior_set.parameters.items()}


def test_derived_absorption_rate_gives_the_published_local_systemic_ratio():
    """Steady state of dA_L/dt = R - (k_abs + k_L) A_L, dA_S/dt = k_abs A_L - k_S A_S."""
    m = _medians(PriorSet.load(CF_IL2))
    k_abs = m["k_sys"] * m["v_sys"] / (m["local_systemic_ratio"] * m["v_local"])
    assert 1.0 < k_abs < 100.0  # absorption half-life between ~10 min and ~17 h
    k_local_loss = k_abs * (1.0 - m["absorbed_fraction"]) / m["absorbed_fraction"]
    assert 0.3 < k_local_loss < 10.0  # local loss half-life between ~2 h and ~2 days

    def rhs(_t, amounts):
        local, systemic = amounts
        release = 2500.0  # ng/day
        return [
            release - (k_abs + k_local_loss) * local,
            k_abs * local - m["k_sys"] * systemic,
        ]

    solution = integrate.solve_ivp(
        rhs, (0.0, 10.0), [0.0, 0.0], method="LSODA", rtol=1e-10, atol=1e-12
    )
    local, systemic = solution.y[:, -1]
    ratio = (local / m["v_local"]) / (systemic / m["v_sys"])
    assert ratio == pytest.approx(150.0, rel=0.01)


@pytest.mark.parametrize("path", [CF_IL2, TUMOUR], ids=lambda p: p.stem)
def test_prior_doubling_times_are_mostly_one_to_ten_days(path):
    growth = PriorSet.load(path).sample(20_000, seed=1)["growth_rate"]
    doubling = np.log(2) / growth
    assert np.mean((doubling > 1.0) & (doubling < 10.0)) > 0.8


def test_cf_il2_prior_makes_the_published_week_one_response_plausible():
    draws = PriorSet.load(CF_IL2).sample(20_000, seed=2)
    mean_effect = 0.8  # E rising at k_effect ~0.7/day averages ~0.8 over the first week
    ratio = np.exp(7 * (draws["growth_rate"] - mean_effect * draws["kill_rate"]))
    assert 0.1 < np.median(ratio) < 0.35  # 80% reduction (ratio 0.2) is central
    assert np.mean(ratio < 0.25) > 0.3 and np.mean(ratio > 1.0) > 0.05  # non-responders possible
    half_life_min = np.log(2) / draws["k_sys"] * 1440
    assert np.mean((half_life_min > 1.0) & (half_life_min < 15.0)) > 0.8
