"""``cytofactory calibrate``: simulation-based calibration and parameter recovery on dask.

Exit codes: 0 done (whatever the verdict: it is in ``summary.md`` and on the terminal); 2 bad
workflow, data, priors, fixed-parameter file or options; 1 internal error or tasks that failed
on the cluster itself (finished replicates are kept: rerun to resume); 130 interrupted (rerun
the same command to resume).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_calibrate_command(commands: argparse._SubParsersAction) -> None:
    """Add ``cytofactory calibrate`` to the command line."""
    parser = commands.add_parser(
        "calibrate",
        help="simulation-based calibration (or parameter recovery with --fixed) of a workflow",
        description="Draw parameters from the workflow's priors, simulate data on its design "
        "(same subjects, times, events, censoring), refit with its sampler (compiled once per "
        "worker) and rank the true values among the posterior draws (Talts et al. 2018). "
        "Writes rank histograms, ECDF-difference plots, uniformity.csv, coverage.csv, "
        "recovery.csv and summary.md to --out. Replicates run on dask.distributed and are "
        "kept in OUT/replicates as they finish: rerunning resumes, a larger --n-sims extends.",
    )
    parser.add_argument("workflow", metavar="WORKFLOW", help="workflow TOML")
    parser.add_argument("--n-sims", type=int, required=True, metavar="N", help="replicates")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="existing dask scheduler; default: a local cluster"
    )
    parser.add_argument("--workers", type=int, metavar="N", help="local workers (default 2)")
    parser.add_argument("--seed", type=int, metavar="S", help="master seed (default: workflow's)")
    parser.add_argument("--draws", type=int, metavar="N", help="override sampler.draws")
    parser.add_argument("--tune", type=int, metavar="N", help="override sampler.tune")
    parser.add_argument("--chains", type=int, metavar="N", help="override sampler.chains")
    parser.add_argument(
        "--target-accept", type=float, metavar="P", help="override sampler.target_accept"
    )
    parser.add_argument(
        "--rank-draws",
        type=int,
        default=99,
        metavar="L",
        help="posterior draws (thinned) per rank (default 99: ranks 0..99)",
    )
    parser.add_argument(
        "--max-rhat",
        type=float,
        metavar="R",
        help="a fit with a larger split R-hat counts as failed (default: the workflow's gate)",
    )
    parser.add_argument(
        "--fixed",
        metavar="PARAMS.toml",
        help="parameter recovery: hold these values fixed (the rest from the prior)",
    )
    parser.add_argument(
        "--simulation-priors",
        metavar="PRIORS.toml",
        help="simulate from this prior set instead of the workflow's (miscalibration check)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="discard replicates of other settings in --out"
    )
    parser.set_defaults(handler=run_calibrate_command)


def run_calibrate_command(args: argparse.Namespace) -> int:
    """Run the command; return the exit code."""
    from bayes.calibrate.config import CalibrationInputError
    from bayes.workflow.schema import WorkflowError

    try:
        return _calibrate(args)  # SIGTERM arrives as KeyboardInterrupt (bayes.cli.main)
    except (WorkflowError, CalibrationInputError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished replicates are kept; rerun the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _check_options(args: argparse.Namespace) -> None:
    from bayes.cli import UsageError

    for option in ("n_sims", "draws", "chains", "rank_draws", "workers"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be at least 1")
    if args.tune is not None and args.tune < 0:
        raise UsageError("--tune must be non-negative")
    if args.target_accept is not None and not 0 < args.target_accept < 1:
        raise UsageError("--target-accept must be between 0 and 1")
    if args.max_rhat is not None and args.max_rhat < 1:
        raise UsageError("--max-rhat must be at least 1")
    if args.scheduler and args.workers:
        raise UsageError("--workers applies to the local cluster, not with --scheduler")


def make_settings(args: argparse.Namespace):
    """Return the :class:`CalibrationSettings` and the fit model of the command's options.

    Raises
    ------
    bayes.cli.UsageError
        If the posterior keeps fewer draws than the ranks need.
    """
    from bayes.calibrate.config import CalibrationSettings, load_fixed
    from bayes.cli import UsageError
    from bayes.workflow.inputs import build_model, load_data
    from bayes.workflow.schema import load_workflow

    loaded = load_workflow(args.workflow)
    sampler, gate = loaded.workflow.sampler, loaded.workflow.checks.gate
    if sampler.backend != "nutpie":
        raise UsageError(
            f"{args.workflow}: sampler.backend is {sampler.backend!r}; calibration compiles "
            "the model once and refits it with nutpie, so it needs backend = 'nutpie'"
        )
    overrides = {
        key: getattr(args, key)
        for key in ("draws", "tune", "chains", "target_accept", "seed", "max_rhat")
        if getattr(args, key) is not None
    }
    model = build_model(loaded, load_data(loaded))
    fixed = load_fixed(args.fixed, model.model) if args.fixed else {}
    settings = CalibrationSettings(
        workflow=str(loaded.path.resolve()),
        seed=overrides.get("seed", sampler.seed),
        draws=overrides.get("draws", sampler.draws),
        tune=overrides.get("tune", sampler.tune),
        chains=overrides.get("chains", sampler.chains),
        target_accept=overrides.get("target_accept", sampler.target_accept),
        mass_matrix=sampler.mass_matrix,
        eigval_cutoff=sampler.eigval_cutoff,
        rank_draws=args.rank_draws,
        max_rhat=overrides.get("max_rhat", gate.max_rhat),
        max_divergences=gate.max_divergences,
        min_bfmi=gate.min_bfmi,
        fixed=fixed,
        fixed_file=str(Path(args.fixed).resolve()) if args.fixed else None,
        simulation_priors=str(Path(args.simulation_priors).resolve())
        if args.simulation_priors
        else None,
        overrides=overrides,
    )
    if settings.rank_draws > settings.draws * settings.chains:
        raise UsageError(
            f"--rank-draws {settings.rank_draws} exceeds the draws kept per fit "
            f"({settings.chains} chains x {settings.draws} draws)"
        )
    return settings, model


def command_line(args: argparse.Namespace) -> str:
    """Return the command that reproduces this run (options as given)."""
    words = ["cytofactory", "calibrate", args.workflow, "--n-sims", str(args.n_sims)]
    words += ["--out", args.out]
    for option in (
        "scheduler",
        "workers",
        "seed",
        "draws",
        "tune",
        "chains",
        "target_accept",
        "max_rhat",
        "fixed",
        "simulation_priors",
    ):
        value = getattr(args, option)
        if value is not None:
            words += [f"--{option.replace('_', '-')}", str(value)]
    if args.rank_draws != 99:
        words += ["--rank-draws", str(args.rank_draws)]
    return shlex.join(words)


def _calibrate(args: argparse.Namespace) -> int:
    from bayes.calibrate.outputs import write_outputs
    from bayes.calibrate.run import calibrate
    from bayes.calibrate.summary import verdict
    from bayes.parallel import BatchFailureError, dask_client, describe_client
    from bayes.workflow.progress import attach_run_log, detach_run_log

    _check_options(args)
    settings, model = make_settings(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    handlers = attach_run_log(out / "calibration.log")
    try:
        print(f"calibrating {args.workflow}: {args.n_sims} replicates, mode {settings.mode}")
        with dask_client(args.scheduler, args.workers) as client:
            print(describe_client(client), flush=True)
            try:
                result = calibrate(
                    settings, args.n_sims, out, client, overwrite=args.overwrite, fit_model=model
                )
            except BatchFailureError as exc:
                print(f"error: {exc}; rerun the same command to resume", file=sys.stderr)
                return EXIT_FAILED
        for path in write_outputs(result, out, command_line(args)):
            print(f"wrote {path}")
        print(verdict(result).headline(settings.mode))
    finally:
        detach_run_log(handlers)
    return EXIT_OK
