"""The PyMC back-end: a :class:`ModelSpec`, a prior set and a study become one ``pm.Model``.

All subjects are solved together by :func:`bayes.ode.solve`; per-subject parameters come from
:func:`bayes.models.hierarchy.subject_parameters`; each modelled analyte gets one observed
variable ``obs_<analyte>`` on its own dimension ``<analyte>_obs`` with M3 censoring (so its
pointwise log-likelihood is there for LOO). :meth:`HierarchicalModel.simulate` draws virtual
data through the very same graph.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pytensor.tensor.variable import TensorVariable

from bayes.data import Study
from bayes.models.design import Design, build_design
from bayes.models.hierarchy import SUBJECT_DIM, CovariateEffect, subject_parameters
from bayes.models.observation import (
    censored_likelihood,
    censored_values,
    censoring_limit_name,
    observed_data_name,
)
from bayes.models.priors import PriorSet
from bayes.models.spec import ModelSpec
from bayes.ode import Events, solve

_TINY = 1e-300


def observed_name(analyte: str) -> str:
    """Return the observed-variable name of an analyte."""
    return f"obs_{analyte}"


def observed_dim(analyte: str) -> str:
    """Return the dimension name of an analyte's observations."""
    return f"{analyte}_obs"


class HierarchicalModel:
    """A hierarchical ODE model bound to data.

    Parameters
    ----------
    spec : ModelSpec
        What the model is.
    priors : PriorSet
        Priors for every parameter of ``spec`` (checked on construction).
    study : Study
        Data (or, for :meth:`simulate`, a design whose values are ignored).
    effects : sequence of CovariateEffect
        Covariate effects on parameters.
    correlated : sequence of str
        Parameters whose random effects get an LKJ correlation.
    centred : sequence of str
        Parameters whose random effects are sampled centred
        (:func:`bayes.models.hierarchy.subject_parameters`).
    """

    def __init__(
        self,
        spec: ModelSpec,
        priors: PriorSet,
        study: Study,
        effects: Sequence[CovariateEffect] = (),
        correlated: Sequence[str] = (),
        centred: Sequence[str] = (),
    ) -> None:
        priors.require(spec.required_priors)
        self.spec = spec
        self.priors = priors
        self.study = study
        self.effects = tuple(effects)
        self.correlated = tuple(correlated)
        self.centred = tuple(centred)
        self.design: Design = build_design(
            study, list(spec.observables), [*spec.doses, *spec.external_events]
        )
        self._model: pm.Model | None = None

    # ------------------------------------------------------------------ graph

    @property
    def model(self) -> pm.Model:
        """The ``pm.Model`` (built on first use)."""
        if self._model is None:
            self._model = self.build()
        return self._model

    def build(self) -> pm.Model:
        """Build the PyMC model with dims ``subject`` and ``<analyte>_obs``."""
        design = self.design
        coords = {SUBJECT_DIM: list(design.subjects)}
        for analyte in self.spec.observables:
            n = int((design.rows["analyte"] == analyte).sum())
            coords[observed_dim(analyte)] = np.arange(n)
        with pm.Model(coords=coords) as model:
            params = subject_parameters(
                self.priors,
                self.spec.parameters,
                design.n_subjects,
                references=self.spec.references,
                covariates=self._covariates(),
                effects=self.effects,
                correlated=self.correlated,
                centred=self.centred,
                identified=self.spec.identified,
            )
            states = self._solve(params)
            for analyte, observable in self.spec.observables.items():
                self._add_observations(analyte, observable, states, params)
        return model

    def _covariates(self) -> dict[str, np.ndarray]:
        table = self.study.covariates.set_index("subject").reindex(self.design.subjects)
        return {
            name: table[name].to_numpy(dtype=float)
            for name in table.columns
            if pd.api.types.is_numeric_dtype(table[name])
        }

    def _solve(self, params: Mapping[str, TensorVariable]) -> TensorVariable:
        if self.spec.solution is not None:
            t0 = np.broadcast_to(np.asarray(self._t0(), dtype=float), (self.design.n_subjects,))
            return self.spec.solution(self._shared(params), self.design, t0)
        system = self.spec.system
        matrix = pt.stack([params[name] for name in system.parameters], axis=1)
        y0 = pt.stack([self._initial(state, params) for state in system.states], axis=1)
        return solve(
            system,
            matrix,
            y0,
            self.design.obs_times,
            obs_mask=self.design.obs_mask,
            events=self._events(params),
            method=self.spec.method,
            t0=self._t0(),
        )

    def _shared(self, params: Mapping[str, TensorVariable]) -> dict[str, TensorVariable]:
        """``params`` with every parameter equal across subjects as one value, shape ``(1,)``.

        An exact solution then computes what depends only on such parameters (rates of
        release, PK, effect and antibody decay) once for the time grid, not once per subject.
        """
        model = pm.modelcontext(None)
        varying = {effect.parameter for effect in self.effects}
        shared = dict(params)
        for name in self.spec.parameters:
            prior = self.priors[name]
            if prior.random_effect is None and prior.offset_from is None and name not in varying:
                shared[name] = pt.shape_padleft(model[name])
        return shared

    def _t0(self) -> float | np.ndarray:
        if self.spec.t0 is not None:
            return self.spec.t0
        design = self.design
        first = np.where(design.obs_mask, design.obs_times, np.inf).min(axis=1)
        if not design.events.empty:
            by_subject = design.events.groupby("subject_index")["time"].min()
            first_event = by_subject.reindex(range(design.n_subjects), fill_value=np.inf)
            first = np.minimum(first, first_event.to_numpy())
        return first

    def _initial(self, state: str, params: Mapping[str, TensorVariable]) -> TensorVariable:
        source = self.spec.initial_state.get(state, 0.0)
        if isinstance(source, str):
            return params[source]
        return pt.ones(self.design.n_subjects) * float(source)

    def _events(self, params: Mapping[str, TensorVariable]) -> Events:
        design = self.design
        parts = [Events.empty(design.n_subjects)]
        for kind, route in self.spec.doses.items():
            table = design.events[design.events["kind"] == kind]
            if table.empty:
                continue
            subject = table["subject_index"].to_numpy()
            amount = pt.as_tensor_variable(table["amount"].to_numpy() * route.amount_factor)
            if route.scale is not None:
                amount = amount * params[route.scale][subject]
            duration = table["duration"].fillna(0.0).to_numpy()
            bolus = duration <= 0
            time = table["time"].to_numpy()
            if bolus.any():
                parts.append(
                    Events.bolus(
                        subject[bolus], time[bolus], route.state, amount[bolus], design.n_subjects
                    )
                )
            if (~bolus).any():
                infused = ~bolus
                rate = amount[infused] / duration[infused]
                stop = time[infused] + duration[infused]
                parts.append(
                    Events.infusion(
                        subject[infused], time[infused], stop, route.state, rate, design.n_subjects
                    )
                )
        return Events.combine(*parts)

    def _add_observations(
        self,
        analyte: str,
        observable: Any,
        states: TensorVariable,
        params: Mapping[str, TensorVariable],
    ) -> None:
        rows = self.design.rows[self.design.rows["analyte"] == analyte]
        subject = rows["subject_index"].to_numpy()
        at_obs = states[subject, rows["time_index"].to_numpy()]
        named_states = {s: at_obs[:, i] for i, s in enumerate(self.spec.system.states)}
        named_params = {name: value[subject] for name, value in params.items()}
        named_params.update({k: v[subject] for k, v in self.spec.subject_data.items()})
        time = pt.as_tensor_variable(rows["time"].to_numpy())
        prediction = observable.predict(time, named_states, named_params)
        if observable.error.scale == "log" and not observable.log_prediction:
            prediction = pt.log(pt.maximum(prediction, _TINY))
        error = observable.error
        model = pm.modelcontext(None)
        sigma = self._error_parameter(error.sigma, model)
        nu = None if error.nu is None else self._error_parameter(error.nu, model)
        dim = observed_dim(analyte)
        pm.Deterministic(f"pred_{analyte}", prediction, dims=dim)
        censored_likelihood(
            observed_name(analyte),
            error,
            prediction,
            observed=rows["value"].to_numpy(),
            censored=rows["censored"].to_numpy(),
            limit=rows["limit"].to_numpy(),
            sigma=sigma,
            nu=nu,
            dims=dim,
            mutable=True,
        )

    def _error_parameter(self, name: str, model: pm.Model) -> TensorVariable:
        if name in model.named_vars:
            return model[name]
        if name in self.spec.parameters:
            return model[name]
        return self.priors[name].prior.to_pymc(name)

    # ------------------------------------------------------------------ use

    def config(self) -> dict[str, Any]:
        """Return what identifies this model: spec name, parameters, priors, effects, data hash."""
        return {
            "model": self.spec.name,
            "states": list(self.spec.system.states),
            "parameters": list(self.spec.parameters),
            "observables": {
                analyte: {
                    "family": o.error.family,
                    "scale": o.error.scale,
                    "sigma": o.error.sigma,
                    "nu": o.error.nu,
                }
                for analyte, o in self.spec.observables.items()
            },
            "doses": {k: r.state for k, r in self.spec.doses.items()},
            "method": self._method_description(),
            "priors": self.priors.to_dict(),
            "effects": [vars(e) for e in self.effects],
            "correlated": list(self.correlated),
            "centred": list(self.centred),
            "identified": {k: v.name for k, v in self.spec.identified.items()},
            "data_hash": study_hash(self.study),
        }

    def _method_description(self) -> str:
        if self.spec.solution is None:
            return repr(self.spec.method)
        return getattr(self.spec.solution, "description", "exact solution")

    def fit(self, **sampler: Any) -> xr.DataTree:
        """Sample the posterior; keyword arguments go to :func:`bayes.inference.sample`.

        Returns
        -------
        xarray.DataTree
            Posterior, sample stats, log-likelihood, observed and constant data, with the
            model configuration in the root attributes.
        """
        from bayes.inference import sample

        tree = sample(self.model, **sampler)
        tree.attrs["model_config"] = json.dumps(self.config(), sort_keys=True)
        return tree

    def sample_posterior_predictive(self, tree: xr.DataTree, seed: int = 0) -> xr.DataTree:
        """Add ``posterior_predictive`` draws of every observed analyte to ``tree``."""
        names = [observed_name(a) for a in self.spec.observables]
        with self.model:
            return pm.sample_posterior_predictive(
                tree,
                var_names=names,
                random_seed=seed,
                extend_inferencedata=True,
                progressbar=False,
            )

    def simulate(self, parameters: Mapping[str, Any], seed: int) -> Study:
        """Simulate a virtual cohort with this model's design, through the likelihood's graph.

        Parameters
        ----------
        parameters : mapping
            Values for model variables: population parameters (e.g. ``kill_rate``), random-effect
            SDs (``omega_<name>``), and optionally the standardised deviations ``z_<name>``
            (one per subject); variables not given are drawn from their priors.
        seed : int
            Random seed (deviations not given and residual errors).

        Returns
        -------
        Study
            The design study with simulated values. Values at or below the assay limit are
            censored; rows without a limit of their own take their analyte's most common limit
            (an LLOQ applies to every sample of an assay).
        """
        model = self.model
        unknown = [name for name in parameters if name not in model.named_vars]
        if unknown:
            raise KeyError(f"unknown model variable(s) {unknown}; see model.named_vars")
        fixed = pm.do(model, {name: np.asarray(v, dtype=float) for name, v in parameters.items()})
        names = [observed_name(a) for a in self.spec.observables]
        draws = pm.draw([fixed[name] for name in names], random_seed=seed)
        return self._with_values(dict(zip(self.spec.observables, draws, strict=True)))

    def _with_values(self, draws: Mapping[str, np.ndarray]) -> Study:
        observations = self.study.observations.copy()
        for analyte, scaled in draws.items():
            values, censored, limit = self._censor(analyte, scaled)
            where = observations["analyte"] == analyte
            observations.loc[where, "value"] = np.where(censored, limit, values)
            observations.loc[where, "censored"] = censored
        return Study(
            observations=observations,
            events=self.study.events,
            covariates=self.study.covariates,
            groups=self.study.groups,
            excluded=self.study.excluded,
            source=f"simulated by model {self.spec.name!r} on the design of {self.study.name}",
            name=f"{self.study.name}_simulated",
        )

    def _censor(
        self, analyte: str, scaled: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Natural-scale values, censoring flags and limits of a simulated draw (see simulate)."""
        error = self.spec.observables[analyte].error
        rows = self.design.rows["analyte"] == analyte
        scaled = np.asarray(scaled, dtype=float)
        values = np.exp(scaled) if error.scale == "log" else scaled
        limit = _assay_limit(self.design.rows.loc[rows, "limit"])
        # compared on the error scale: a draw clipped at the M3 bound is exactly log(limit),
        # while exp(log(limit)) may exceed limit by a rounding error
        with np.errstate(invalid="ignore"):
            censored = np.isfinite(limit) & (scaled <= error.transform(limit))
        return values, censored, limit

    def observation_data(self, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the model's observation data containers for simulated draws.

        The values can be set with ``pm.set_data`` or ``compiled.with_data`` (nutpie) to refit
        the same compiled model to simulated data; censoring follows :meth:`simulate`.

        Parameters
        ----------
        draws : mapping
            Analyte -> draws of its observed variable ``obs_<analyte>`` (on the error model's
            scale, as :func:`pymc.draw` returns them).

        Returns
        -------
        dict of str to numpy.ndarray
            Container name -> values: the scaled observations and the M3 lower limits.
        """
        containers = {}
        for analyte, scaled in draws.items():
            values, censored, limit = self._censor(analyte, scaled)
            error = self.spec.observables[analyte].error
            data, lower = censored_values(error, values, censored, limit)
            name = observed_name(analyte)
            containers[observed_data_name(name)] = data
            containers[censoring_limit_name(name)] = lower
        return containers

    # ------------------------------------------------------------------ persistence

    def save(self, tree: xr.DataTree, path: str | Path) -> Path:
        """Write a fitted result to NetCDF with this model's configuration in its attributes."""
        path = Path(path)
        tree = tree.copy()
        tree.attrs["model_config"] = json.dumps(self.config(), sort_keys=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tree.to_netcdf(tmp, engine="netcdf4")
        tmp.replace(path)
        return path

    def load(self, path: str | Path) -> xr.DataTree:
        """Read a fitted result saved by :meth:`save`, refusing one made with another config.

        Raises
        ------
        ValueError
            If the file's model configuration differs from this model's (names the keys).
        """
        tree = xr.open_datatree(path, engine="netcdf4").load()
        stored = json.loads(tree.attrs.get("model_config", "{}"))
        current = json.loads(json.dumps(self.config(), sort_keys=True))
        differing = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        if differing:
            raise ValueError(
                f"{path} was fitted with a different model configuration "
                f"(differs in: {', '.join(differing)}); refit or load it with the matching model"
            )
        return tree


def _assay_limit(limits: pd.Series) -> np.ndarray:
    known = limits.dropna()
    if known.empty:
        return limits.to_numpy()
    return limits.fillna(known.mode().iloc[0]).to_numpy()


def study_hash(study: Study) -> str:
    """Return a SHA-256 of the study's observations and events (values, times, flags)."""
    digest = hashlib.sha256()
    for frame in (study.observations, study.events):
        columns = [c for c in frame.columns if c not in ("source_file", "source_row")]
        digest.update(pd.util.hash_pandas_object(frame[columns], index=False).to_numpy().tobytes())
    return digest.hexdigest()
