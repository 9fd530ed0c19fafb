"""``cytofactory trial``: simulate first-in-human escalation designs on dask.distributed."""

from __future__ import annotations

import argparse
from pathlib import Path

CHECKPOINT_FOLDER = ".trial-checkpoint"


def add_trial_command(commands: argparse._SubParsersAction) -> None:
    """Add ``cytofactory trial`` to the command line."""
    trial = commands.add_parser(
        "trial",
        help="operating characteristics of escalation designs under the translational posterior",
        description="Simulate the designs of a trial-design TOML (3+3, BOIN, BLRM-EWOC) on "
        "truths drawn from a translation's predictions.nc, on dask.distributed, and write "
        "oc.nc, oc.csv, figures and report.html to --out. Finished batches are kept in "
        f"OUT/{CHECKPOINT_FOLDER}: rerunning after an interruption resumes.",
    )
    trial.add_argument("design", metavar="DESIGN", help="trial-design TOML")
    trial.add_argument(
        "--translation",
        required=True,
        metavar="DIR",
        help="output folder of `cytofactory translate` (or its predictions.nc)",
    )
    trial.add_argument("--out", required=True, metavar="DIR", help="output folder")
    trial.add_argument("--n-trials", type=int, metavar="N", help="override simulation.n_trials")
    trial.add_argument("--seed", type=int, metavar="S", help="override simulation.seed")
    trial.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="existing dask scheduler (e.g. tcp://127.0.0.1:8786); default: a local cluster",
    )
    trial.add_argument(
        "--workers", type=int, metavar="N", help="workers of the local cluster (default 2)"
    )
    trial.set_defaults(handler=run_trial_command)


def run_trial_command(args: argparse.Namespace) -> int:
    """Run the command; return the exit code (bad input raises and is mapped by the CLI)."""
    from bayes.cli import EXIT_INTERNAL, EXIT_OK, UsageError
    from bayes.parallel import BatchFailureError, dask_client, describe_client
    from bayes.report.trial_report import write_trial_report
    from bayes.trials.run import prepare, simulate

    for option in ("n_trials", "workers"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise UsageError("--seed must be non-negative")
    if args.scheduler and args.workers:
        raise UsageError("--workers applies to the local cluster, not with --scheduler")
    study = prepare(args.design, args.translation)
    if args.seed is not None:
        simulation = study.config.simulation.model_copy(update={"seed": args.seed})
        study = prepare_with(study, study.config.model_copy(update={"simulation": simulation}))
    config = study.config
    out = Path(args.out)
    n_trials = args.n_trials or config.simulation.n_trials
    print(
        f"{config.name}: {len(study.designs)} designs x {n_trials} trials, "
        f"{study.model.n_doses} dose levels ({', '.join(study.model.dose_names)})",
        flush=True,
    )
    with dask_client(args.scheduler, args.workers) as client:
        print(describe_client(client), flush=True)
        try:
            results = simulate(study, client, n_trials=n_trials, checkpoint=out / CHECKPOINT_FOLDER)
        except BatchFailureError as exc:
            print(f"error: {exc}; rerun the same command to resume", flush=True)
            return EXIT_INTERNAL
    print(f"simulated {n_trials} trials per design in {results.seconds:.1f} s", flush=True)
    for path in write_trial_report(study, results, out):
        print(f"wrote {path}")
    _remove_checkpoint(out / CHECKPOINT_FOLDER)
    summary = results.summary
    for design in summary["design"].values:
        one = summary.sel(design=design)
        print(
            f"  {design}: P(safe & active dose) {float(one['p_select_safe_and_active']):.3f}, "
            f"P(stop, no dose) {float(one['p_stop_for_toxicity']):.3f}, "
            f"mean patients {float(one['mean_patients']):.1f}, "
            f"mean DLTs {float(one['mean_dlts']):.2f}"
        )
    return EXIT_OK


def prepare_with(study, config):
    """Return ``study`` with another configuration (designs recompiled: the seed matters)."""
    from dataclasses import replace

    from bayes.trials.simulate import compile_designs

    return replace(study, config=config, designs=compile_designs(config, study.model))


def _remove_checkpoint(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
