"""PSIS-LOO for one fit and ELPD comparison of several (ArviZ), over all observed variables.

A model with several observed variables (e.g. tumour burden and IL-2) has one pointwise
log-likelihood per variable; LOO here leaves out one *observation* of any of them, so the
variables are joined along one ``observation`` dimension. Comparisons are only meaningful
between fits to the same observations: :func:`compare_fits` checks that the observed variables
and their sizes agree, and can restrict the comparison to chosen variables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

PARETO_K_WARNING = 0.7
"""Pareto-k above which PSIS-LOO is unreliable for an observation (Vehtari et al. 2024, JMLR
25(72), "Pareto smoothed importance sampling": k > 0.7 means too few effective draws)."""


def joined_log_likelihood(tree: xr.DataTree, var_names: Sequence[str] | None = None) -> xr.DataTree:
    """Return a tree whose ``log_likelihood`` holds one variable ``joined`` over all observations.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit with a ``log_likelihood`` group.
    var_names : sequence of str, optional
        Variables to join (default: all in ``log_likelihood``).
    """
    group = tree["log_likelihood"].to_dataset()
    names = list(var_names) if var_names is not None else list(group.data_vars)
    missing = [n for n in names if n not in group.data_vars]
    if missing:
        raise KeyError(f"no log-likelihood for {missing}; available: {list(group.data_vars)}")
    parts = []
    for name in names:
        array = group[name]
        extra = [d for d in array.dims if d not in ("chain", "draw")]
        flat = array.stack(observation=extra) if extra else array.expand_dims(observation=1)
        parts.append(flat.drop_vars(list(flat.coords)).transpose("chain", "draw", "observation"))
    joined = xr.concat(parts, dim="observation")
    return xr.DataTree.from_dict(
        {
            "posterior": tree["posterior"].to_dataset(),
            "log_likelihood": xr.Dataset({"joined": joined}),
        }
    )


def loo_table(tree: xr.DataTree, var_names: Sequence[str] | None = None) -> dict[str, float]:
    """Return ELPD-LOO, its SE, p_loo and the Pareto-k counts of one fit.

    An observation whose log-likelihood is the same in every draw (e.g. a sample taken before
    any drug could arrive, censored with probability one) has an exact leave-one-out term:
    that constant, with Pareto-k 0. PSIS cannot smooth its flat weights, so it is added exactly.
    """
    joined = joined_log_likelihood(tree, var_names)
    values = joined["log_likelihood"]["joined"]
    constant = (values.max(("chain", "draw")) == values.min(("chain", "draw"))).to_numpy()
    varying = joined.copy()
    varying["log_likelihood"] = xr.DataTree(
        xr.Dataset({"joined": values.isel(observation=np.flatnonzero(~constant))})
    )
    result = az.loo(varying, pointwise=True, var_name="joined")
    pointwise = np.concatenate(
        [np.asarray(result.elpd_i).ravel(), values.isel(chain=0, draw=0).to_numpy()[constant]]
    )
    k = np.asarray(result.pareto_k)
    return {
        "elpd_loo": float(pointwise.sum()),
        "se": float(np.sqrt(pointwise.size * np.var(pointwise))),
        "p_loo": float(result.p),
        "n_observations": int(pointwise.size),
        "n_constant_log_likelihood": int(constant.sum()),
        "n_pareto_k_above_0.7": int((k > PARETO_K_WARNING).sum()),
        "max_pareto_k": float(np.nanmax(k)),
    }


def compare_fits(
    fits: Mapping[str, xr.DataTree], var_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Compare fits by ELPD-LOO (``arviz.compare``) with Pareto-k counts per fit.

    Parameters
    ----------
    fits : mapping of str to xarray.DataTree
        Name -> fit with a ``log_likelihood`` group; at least two.
    var_names : sequence of str, optional
        Observed variables to compare on (default: those common to all fits).

    Returns
    -------
    pandas.DataFrame
        One row per fit, best first: ``rank, elpd, p, elpd_diff, weight, se, dse, warning``
        plus ``n_pareto_k_above_0.7`` and ``max_pareto_k``.

    Raises
    ------
    ValueError
        If fewer than two fits are given, they share no observed variable, or the variables'
        sizes differ (the fits are not to the same data).
    """
    if len(fits) < 2:
        raise ValueError("comparison needs at least two fits")
    names = list(var_names) if var_names is not None else _common_variables(fits)
    _check_same_observations(fits, names)
    joined = {label: joined_log_likelihood(tree, names) for label, tree in fits.items()}
    table = az.compare(joined, var_name="joined", round_to="none")
    counts = {label: loo_table(tree, names) for label, tree in fits.items()}
    table["n_pareto_k_above_0.7"] = [counts[i]["n_pareto_k_above_0.7"] for i in table.index]
    table["max_pareto_k"] = [counts[i]["max_pareto_k"] for i in table.index]
    table.attrs["variables"] = names
    return table


def _common_variables(fits: Mapping[str, xr.DataTree]) -> list[str]:
    sets = [list(tree["log_likelihood"].to_dataset().data_vars) for tree in fits.values()]
    common = [name for name in sets[0] if all(name in s for s in sets[1:])]
    if not common:
        raise ValueError(f"the fits share no observed variable: {sets}")
    return common


def _check_same_observations(fits: Mapping[str, xr.DataTree], names: Sequence[str]) -> None:
    sizes = {
        label: {n: int(tree["log_likelihood"][n].size // _draws(tree)) for n in names}
        for label, tree in fits.items()
    }
    reference_label, reference = next(iter(sizes.items()))
    for label, size in sizes.items():
        if size != reference:
            raise ValueError(
                f"fits {reference_label!r} and {label!r} are not to the same observations "
                f"({reference} vs {size}); compare fits of the same data"
            )


def _draws(tree: xr.DataTree) -> int:
    posterior = tree["posterior"]
    return int(posterior.sizes["chain"] * posterior.sizes["draw"])
