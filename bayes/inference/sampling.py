"""Sampling any PyMC model: nutpie by default, PyMC's NUTS, numpyro or blackjax when installed."""

from __future__ import annotations

from typing import Literal

import pymc as pm
import xarray as xr

Sampler = Literal["nutpie", "pymc", "numpyro", "blackjax"]


def sample(
    model: pm.Model,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    target_accept: float = 0.8,
    sampler: Sampler = "nutpie",
    progressbar: bool = True,
) -> xr.DataTree:
    """Draw posterior samples with the pointwise log-likelihood kept for LOO.

    Parameters
    ----------
    model : pymc.Model
        Any PyMC model.
    draws, tune, chains : int
        Kept draws per chain, tuning steps per chain, number of chains.
    seed : int
        Random seed; the same seed gives the same draws.
    target_accept : float
        Target acceptance rate of NUTS step-size adaptation.
    sampler : {"nutpie", "pymc", "numpyro", "blackjax"}
        NUTS implementation; nutpie compiles the model with numba.
    progressbar : bool
        Show sampling progress.

    Returns
    -------
    xarray.DataTree
        ``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data``,
        ``constant_data`` (when the model has data containers).
    """
    kwargs = {"target_accept": target_accept}
    with model:
        tree = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            nuts_sampler=sampler,
            progressbar=progressbar,
            idata_kwargs={"log_likelihood": True},
            **kwargs,
        )
    return tree
