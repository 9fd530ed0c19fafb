"""Run a trial-design study: read inputs, simulate on dask, compute operating characteristics."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import xarray as xr
from distributed import Client

from bayes import __version__
from bayes.parallel import CheckpointStore, Progress, map_batches
from bayes.trials.config import TrialDesignConfig, load_design
from bayes.trials.designs import Design
from bayes.trials.oc import summarise, trial_dataset
from bayes.trials.simulate import compile_designs, concatenate_batches, simulate_batch_task
from bayes.trials.truths import TruthModel, load_exposure, select_doses


@dataclass(frozen=True)
class TrialStudy:
    """Inputs of a run: the design file, the truth model and the compiled designs."""

    config: TrialDesignConfig
    model: TruthModel
    designs: tuple[Design, ...]
    design_path: Path
    predictions_path: Path
    exposure_attrs: dict


@dataclass(frozen=True)
class TrialResults:
    """Outputs of a run: per-trial results, the summary, timing."""

    trials: xr.Dataset
    summary: xr.Dataset
    seconds: float


def predictions_file(translation: str | Path) -> Path:
    """Return ``predictions.nc`` of a translation folder (or the file itself)."""
    path = Path(translation)
    return path / "predictions.nc" if path.is_dir() else path


def prepare(design_path: str | Path, translation: str | Path) -> TrialStudy:
    """Read the design file and the translation predictions; compile the designs."""
    config = load_design(design_path)
    predictions = predictions_file(translation)
    exposure = load_exposure(predictions)
    chosen = select_doses(exposure, config.doses, label=str(design_path))
    model = TruthModel.from_exposure(chosen, config)
    return TrialStudy(
        config=config,
        model=model,
        designs=compile_designs(config, model),
        design_path=Path(design_path),
        predictions_path=predictions,
        exposure_attrs=dict(exposure.attrs),
    )


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def batch_plan(n_trials: int, batch_size: int) -> dict[str, tuple]:
    """Return batch keys and their trial-index ranges (keys sort in trial order)."""
    width = len(str(max(n_trials - 1, 0)))
    return {
        f"trials-{start:0{width}d}": (range(start, min(start + batch_size, n_trials)),)
        for start in range(0, n_trials, batch_size)
    }


def simulate(
    study: TrialStudy,
    client: Client,
    *,
    n_trials: int | None = None,
    checkpoint: str | Path | None = None,
    stream: TextIO | None = None,
) -> TrialResults:
    """Simulate every design on the same trials on the dask cluster; return the results.

    Parameters
    ----------
    study : TrialStudy
    client : distributed.Client
    n_trials : int, optional
        Overrides ``simulation.n_trials`` of the design file.
    checkpoint : path, optional
        Folder keeping finished batches; an interrupted run with the same inputs resumes.
    stream : text stream, optional
        Where progress goes (default stderr).

    """
    config = study.config
    n_trials = n_trials or config.simulation.n_trials
    seed = config.simulation.seed
    store = None
    if checkpoint is not None:
        fingerprint = {
            "design": config.model_dump(mode="json"),
            "predictions_sha256": _file_digest(study.predictions_path),
            "n_trials": n_trials,
            "version": __version__,
        }
        store = CheckpointStore(checkpoint, fingerprint)
    batches = batch_plan(n_trials, config.simulation.batch_size)
    tracker = Progress(n_trials, "trials", stream)
    start = time.perf_counter()
    results = map_batches(
        client,
        simulate_batch_task,
        {key: (seed, trials) for key, (trials,) in batches.items()},
        shared=(study.model, study.designs, config.expansion),
        retries=config.simulation.retries,
        store=store,
        progress=lambda key, result, resumed: tracker.update(result["trial"].size, resumed=resumed),
    )
    seconds = time.perf_counter() - start
    joined = concatenate_batches(list(results.values()))
    trials = trial_dataset(joined, config, study.model)
    trials.attrs.update(_provenance(study, n_trials))
    summary = summarise(trials)
    summary.attrs.update(trials.attrs)
    return TrialResults(trials=trials, summary=summary, seconds=seconds)


def _provenance(study: TrialStudy, n_trials: int) -> dict:
    attrs = {
        "design_file": str(study.design_path),
        "design_name": study.config.name,
        "predictions_file": str(study.predictions_path),
        "n_trials": n_trials,
        "seed": study.config.simulation.seed,
        "batch_size": study.config.simulation.batch_size,
        "package_version": __version__,
        "design_config_json": study.config.model_dump_json(),
    }
    for key, value in study.exposure_attrs.items():
        if isinstance(value, str | int | float):
            attrs[f"translation_{key}"] = value
    return attrs
