import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes.models.observation import ErrorModel, censored_likelihood


def _pointwise_logp(error_model, observed, censored, limit, prediction, sigma=0.3, nu=None):
    with pm.Model() as model:
        censored_likelihood(
            "y",
            error_model,
            np.asarray(prediction),
            observed=np.asarray(observed),
            censored=np.asarray(censored),
            limit=np.asarray(limit),
            sigma=sigma,
            nu=nu,
        )
    return model.compile_logp(vars=[model["y"]], sum=False)({})[0]


def test_m3_log_scale_matches_scipy():
    observed = np.array([120.0, np.nan, 35.0])
    censored = np.array([False, True, False])
    limit = np.array([np.nan, 10.0, np.nan])
    log_prediction = np.log([100.0, 20.0, 40.0])
    logp = _pointwise_logp(ErrorModel(), observed, censored, limit, log_prediction)
    expected = [
        stats.norm.logpdf(np.log(120.0), log_prediction[0], 0.3),
        stats.norm.logcdf(np.log(10.0), log_prediction[1], 0.3),
        stats.norm.logpdf(np.log(35.0), log_prediction[2], 0.3),
    ]
    np.testing.assert_allclose(logp, expected, rtol=1e-7)


def test_student_t_linear_scale_matches_scipy():
    error_model = ErrorModel(family="student_t", scale="linear", nu="nu")
    logp = _pointwise_logp(
        error_model, [1.5, 0.0], [False, True], [np.nan, 0.2], [1.0, 0.5], sigma=0.4, nu=4.0
    )
    expected = [stats.t.logpdf(1.5, 4.0, 1.0, 0.4), stats.t.logcdf(0.2, 4.0, 0.5, 0.4)]
    np.testing.assert_allclose(logp, expected, rtol=1e-8)


def test_censored_without_limit_is_an_error():
    with pytest.raises(ValueError, match="censored observations need finite limits"):
        _pointwise_logp(ErrorModel(), [1.0], [True], [np.nan], [0.0])


def test_student_t_needs_nu():
    with pytest.raises(ValueError, match="needs `nu`"):
        ErrorModel(family="student_t")
