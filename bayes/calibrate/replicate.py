"""One calibration replicate, run as a dask task: simulate from the prior, refit, rank.

Each worker process builds the workflow's model and compiles its sampler and simulator once
(:func:`runner_for`, a per-process cache keyed by the settings), then runs every replicate it is
given with new data only. Replicate ``i`` draws its parameters and data from
``SeedSequence(seed, spawn_key=(i,))``, so the result does not depend on which worker ran it,
in which order, or whether the run was interrupted.

A fit that raises, or whose simulated data are not finite, is returned with ``status`` saying
so (never dropped); a fit that fails the convergence gate keeps its ranks with status
``failed_gate`` and the gate's messages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bayes.calibrate.config import CalibrationInputError, CalibrationSettings
from bayes.inference.diagnostics import GateThresholds
from bayes.inference.repeated import ForwardSimulator, ReusableSampler, fit_diagnostics
from bayes.inference.sbc import replicate_statistics
from bayes.models import HierarchicalModel, PriorSet
from bayes.models.hierarchical import observed_name

log = logging.getLogger("bayes.calibrate")

STATUS_OK = "ok"
STATUS_FAILED_GATE = "failed_gate"
STATUS_INVALID_DATA = "invalid_simulated_data"
STATUS_ERROR = "error"


def build_fit_model(workflow: str) -> HierarchicalModel:
    """Return the workflow's model bound to its data (built, not compiled)."""
    from bayes.workflow.inputs import build_model, load_data
    from bayes.workflow.schema import load_workflow

    loaded = load_workflow(workflow)
    return build_model(loaded, load_data(loaded))


def simulation_model(settings: CalibrationSettings, fit: HierarchicalModel) -> HierarchicalModel:
    """Return the model the data are simulated from: ``fit`` or the same with other priors.

    Raises
    ------
    CalibrationInputError
        If the simulation priors give the model other free variables or shapes.
    """
    if settings.simulation_priors is None:
        return fit
    priors = PriorSet.load(settings.simulation_priors, required=fit.spec.required_priors)
    simulation = HierarchicalModel(
        fit.spec,
        priors,
        fit.study,
        effects=fit.effects,
        correlated=fit.correlated,
        centred=fit.centred,
    )
    fit_shapes = _free_shapes(fit)
    simulation_shapes = _free_shapes(simulation)
    if fit_shapes != simulation_shapes:
        raise CalibrationInputError(
            f"{settings.simulation_priors}: the simulation priors give the model other free "
            f"variables than the workflow's priors ({sorted(simulation_shapes)} vs "
            f"{sorted(fit_shapes)}); random effects must match"
        )
    return simulation


def build_models(settings: CalibrationSettings) -> tuple[HierarchicalModel, HierarchicalModel]:
    """Return the fit model (the workflow's) and the simulation model (see above)."""
    fit = build_fit_model(settings.workflow)
    return fit, simulation_model(settings, fit)


def _free_shapes(model: HierarchicalModel) -> dict[str, tuple[int, ...]]:
    return {rv.name: tuple(int(s) for s in rv.shape.eval()) for rv in model.model.free_RVs}


@dataclass
class ReplicateRunner:
    """The compiled pieces one worker reuses for all its replicates."""

    settings: CalibrationSettings
    fit_model: HierarchicalModel
    simulator: ForwardSimulator
    sampler: ReusableSampler
    build_seconds: float

    @classmethod
    def build(cls, settings: CalibrationSettings) -> ReplicateRunner:
        """Build the models and compile the simulator and the sampler (minutes for ODE models)."""
        start = time.perf_counter()
        fit, sampler = _fitter_for(settings.workflow)
        simulator = ForwardSimulator(simulation_model(settings, fit).model, settings.fixed)
        seconds = time.perf_counter() - start
        log.info("worker ready in %.1f s (model build and compile)", seconds)
        return cls(settings, fit, simulator, sampler, seconds)

    @property
    def thresholds(self) -> GateThresholds:
        """The convergence gate of a replicate: R-hat, divergences, E-BFMI (ESS is recorded)."""
        s = self.settings
        return GateThresholds(
            max_rhat=s.max_rhat,
            min_ess_bulk=0.0,
            min_ess_tail=0.0,
            max_divergences=s.max_divergences,
            min_bfmi=s.min_bfmi,
        )

    def run(self, index: int) -> dict[str, np.ndarray]:
        """Simulate and fit replicate ``index``; return its record (arrays, for the store)."""
        simulation_seed, fit_seed = self.settings.replicate_seeds(index)
        record = {
            "replicate": np.asarray(index),
            "simulation_seed": np.asarray(simulation_seed),
            "fit_seed": np.asarray(fit_seed),
        }
        start = time.perf_counter()
        try:
            record.update(self._simulate_and_fit(simulation_seed, fit_seed))
        except Exception as exc:  # recorded and counted, never hidden
            log.warning("replicate %d: %s: %s", index, type(exc).__name__, exc)
            record.update(_failed(STATUS_ERROR, f"{type(exc).__name__}: {exc}"))
            record["traceback"] = np.asarray(traceback.format_exc()[-4000:])
        record["seconds"] = np.asarray(time.perf_counter() - start)
        return record

    def _simulate_and_fit(self, simulation_seed: int, fit_seed: int) -> dict[str, np.ndarray]:
        s = self.settings
        truth, observations = self.simulator.draw(simulation_seed)
        draws = {a: observations[observed_name(a)] for a in self.fit_model.spec.observables}
        data = self.fit_model.observation_data(draws)
        censored = sum(int(np.isfinite(v).sum()) for k, v in data.items() if k.endswith("_lower"))
        values = [v for k, v in data.items() if not k.endswith("_lower")]
        if not all(np.all(np.isfinite(v)) for v in values):
            return _failed(STATUS_INVALID_DATA, "simulated observations are not all finite")
        tree = self.sampler.sample(
            data,
            draws=s.draws,
            tune=s.tune,
            chains=s.chains,
            seed=fit_seed,
            target_accept=s.target_accept,
            mass_matrix=s.mass_matrix,
            eigval_cutoff=s.eigval_cutoff,
        )
        names = self.sampler.var_names
        diagnostics = fit_diagnostics(tree, self.thresholds, names)
        statistics = replicate_statistics(
            tree["posterior"].to_dataset(), {n: truth[n] for n in names}, s.rank_draws, s.levels
        )
        status = STATUS_OK if diagnostics.passed else STATUS_FAILED_GATE
        return {
            **statistics,
            "status": np.asarray(status),
            "message": np.asarray("; ".join(diagnostics.failures)),
            "divergences": np.asarray(diagnostics.divergences),
            "max_rhat": np.asarray(diagnostics.max_rhat),
            "min_ess_bulk": np.asarray(diagnostics.min_ess_bulk),
            "min_ess_tail": np.asarray(diagnostics.min_ess_tail),
            "min_bfmi": np.asarray(diagnostics.min_bfmi),
            "n_observations": np.asarray(sum(v.size for v in values)),
            "n_censored": np.asarray(censored),
        }


def _failed(status: str, message: str) -> dict[str, np.ndarray]:
    return {"status": np.asarray(status), "message": np.asarray(message)}


_RUNNERS: dict[str, ReplicateRunner] = {}
_FITTERS: dict[str, tuple[HierarchicalModel, ReusableSampler]] = {}
_LOCK = threading.RLock()


def workflow_digest(workflow: str) -> str:
    """Return a digest of the workflow file and every file it names."""
    from bayes.workflow.inputs import file_sha256, input_files
    from bayes.workflow.schema import load_workflow

    files = {"workflow": Path(workflow), **input_files(load_workflow(workflow))}
    text = json.dumps({key: file_sha256(path) for key, path in files.items()}, sort_keys=True)
    return hashlib.sha256(f"{Path(workflow).resolve()}:{text}".encode()).hexdigest()


def _fitter_for(workflow: str) -> tuple[HierarchicalModel, ReusableSampler]:
    """Return this process's fit model and compiled sampler of a workflow (built once).

    Shared by every calibration of the workflow in this process (e.g. with other simulation
    priors or fixed values): compiling the sampler is what takes minutes.
    """
    key = workflow_digest(workflow)
    with _LOCK:
        if key not in _FITTERS:
            fit = build_fit_model(workflow)
            _FITTERS[key] = (fit, ReusableSampler(fit.model))
        return _FITTERS[key]


def runner_for(settings: CalibrationSettings) -> tuple[ReplicateRunner, bool]:
    """Return this process's runner for ``settings`` and whether this call built it."""
    key = settings.key()
    with _LOCK:
        if key in _RUNNERS:
            return _RUNNERS[key], False
        runner = ReplicateRunner.build(settings)
        _RUNNERS[key] = runner
        return runner, True


def run_replicate_task(settings: CalibrationSettings, index: int) -> dict[str, np.ndarray]:
    """Dask task: run replicate ``index`` with the worker's cached runner."""
    runner, built = runner_for(settings)
    record = runner.run(index)
    record["worker_build_seconds"] = np.asarray(runner.build_seconds if built else 0.0)
    return record
