"""Command line: ``cytofactory`` (also ``python -m bayes``).

Exit codes: 0 success; 2 bad input or usage (every data problem is printed as
``file:row:column: message`` on stderr, never a traceback); 1 unexpected internal error
(a short message; ``--debug`` shows the traceback).

Commands are grouped in sub-parsers (``data``, ``priors``; ``run``, ``translate``, ``trial``,
``compare``, ``calibrate`` are added by later work through :data:`COMMAND_BUILDERS`).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from bayes import __version__
from bayes.calibrate.cli import add_calibrate_command
from bayes.data import FORMATS, DataError, combine_studies, load_study
from bayes.data.study import Study
from bayes.models.cohort_cli import add_cohort_command
from bayes.models.priors import PriorError
from bayes.translate.cli import add_translate_command
from bayes.trials.cli import add_trial_command
from bayes.workflow.cli import add_workflow_commands

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad combination of command-line options (exit code 2)."""


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="data file(s) or mapping TOML")
    parser.add_argument("--format", choices=FORMATS, help="input format (default: detected)")
    parser.add_argument("--mapping", metavar="FILE", help="mapping TOML (nonmem or mapped)")
    parser.add_argument("--events", metavar="FILE", help="events CSV (tidy format, one PATH)")
    parser.add_argument(
        "--data-root", metavar="DIR", help="data folder overriding a mapping's root"
    )
    parser.add_argument(
        "--prefix-subjects",
        action="store_true",
        help="with several PATHs: write subject ids as <study>:<id> (else ids must not collide)",
    )


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="check and summarise input data")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    validate = sub.add_parser(
        "validate",
        help="check data files; print a one-line summary or every problem",
        description="Exit 0 and a summary when valid; exit 2 with one problem per line "
        "(file:row:column: message; row = file line, header = 1) when not.",
    )
    _add_input_options(validate)
    validate.set_defaults(handler=_validate)
    summarize = sub.add_parser(
        "summarize", help="write summary tables and trajectory figures to a folder"
    )
    _add_input_options(summarize)
    summarize.add_argument("--out", required=True, metavar="DIR", help="output folder")
    summarize.set_defaults(handler=_summarize)


def _add_priors_commands(commands: argparse._SubParsersAction) -> None:
    priors = commands.add_parser("priors", help="check prior sets")
    sub = priors.add_subparsers(dest="priors_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "check",
        help="prior predictive trajectories per dose group and a plausible-range table",
        description="Validate a CF-IL2 prior set, draw from it through the model on a reference "
        "design (control, 1.5/2.5/5 ug/day, 2.5 ug/day + anti-PD-1; daily to day 28) and write "
        "figures, plausibility.csv, priors.csv and prior_predictive.nc to --out.",
    )
    check.add_argument(
        "priors", metavar="PRIORS", help="prior set TOML (e.g. priors/cf_il2_mouse.toml)"
    )
    check.add_argument("--out", required=True, metavar="DIR", help="output folder")
    check.add_argument("--draws", type=int, default=200, help="prior draws (default 200)")
    check.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    check.add_argument(
        "--growth", choices=("gompertz", "logistic", "exponential"), default="gompertz"
    )
    check.add_argument("--release", choices=("exponential", "biphasic"), default="exponential")
    check.set_defaults(handler=_priors_check)


COMMAND_BUILDERS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_data_commands,
    _add_priors_commands,
    add_cohort_command,
    add_translate_command,
    add_trial_command,
    add_workflow_commands,
    add_calibrate_command,
]
"""Functions that add a top-level command; later commands append here."""


def build_parser() -> argparse.ArgumentParser:
    """Return the ``cytofactory`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="cytofactory",
        description="Bayesian inference for IL-2 cytokine-factory experiments.",
    )
    parser.add_argument("--version", action="version", version=f"cytofactory {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for builder in COMMAND_BUILDERS:
        builder(commands)
    return parser


def _load(args: argparse.Namespace) -> Study:
    if args.events and len(args.paths) > 1:
        raise UsageError("--events applies to a single tidy PATH")
    studies = [
        load_study(
            path, args.format, mapping=args.mapping, events=args.events, data_root=args.data_root
        )
        for path in args.paths
    ]
    return combine_studies(studies, prefix=args.prefix_subjects and len(studies) > 1)


def _validate(args: argparse.Namespace) -> int:
    study = _load(args)
    print(f"valid: {study.summary_line()}")
    return EXIT_OK


def _summarize(args: argparse.Namespace) -> int:
    from bayes.report.data_summary import write_summary

    study = _load(args)
    print(study.summary_line())
    for path in write_summary(study, args.out):
        print(f"wrote {path}")
    return EXIT_OK


def _priors_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bayes.models.cf_il2 import CFIL2Config
    from bayes.models.prior_check import plausibility_table, prior_predictive
    from bayes.models.priors import PriorSet
    from bayes.report.prior_check import write_prior_check

    if args.draws < 10:
        raise UsageError("--draws must be at least 10")
    config = CFIL2Config(growth=args.growth, release=args.release)
    priors = PriorSet.load(args.priors, required=config.parameters())
    print(
        f"prior set {priors.name}: {len(priors.parameters)} parameters; drawing {args.draws} "
        "trajectories per group (first use compiles the model, ~1-2 min)",
        flush=True,
    )
    check = prior_predictive(priors, config, draws=args.draws, seed=args.seed)
    table = plausibility_table(check)
    for row in table.itertuples():
        print(
            f"  {row.fraction_in_range:6.1%} in [{row.plausible_low:g}, "
            f"{row.plausible_high:g}] {row.unit}: {row.quantity}"
        )
    for path in write_prior_check(check, table, priors.table(), Path(args.out)):
        print(f"wrote {path}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except DataError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        n = len(exc.issues) + exc.n_more
        print(f"error: {n} problem{'s' if n != 1 else ''} in the input data", file=sys.stderr)
        return EXIT_INPUT
    except PriorError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INPUT
    except UsageError as exc:
        print(f"cytofactory: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 ok, 2 bad input or usage, 1 internal error, 130 interrupted (Ctrl-C or SIGTERM;
        commands with checkpoints keep what they finished).

    """
    from bayes.parallel import terminate_as_interrupt

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    try:
        with terminate_as_interrupt():
            return _run(args)
    except KeyboardInterrupt:  # commands with their own clean-up report it themselves
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # last resort: keep tracebacks away from users
        if args.debug:
            traceback.print_exc()
        else:
            print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            print("run with --debug for the traceback", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
