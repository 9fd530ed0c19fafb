"""``cytofactory run WORKFLOW`` and ``cytofactory compare RUN_DIR RUN_DIR ...``.

Exit codes: 0 done (``run`` also when the diagnostics gate failed, unless ``--strict``);
1 internal error, or a failed gate with ``--strict``; 2 bad workflow, data, priors or usage.
An interrupted run (Ctrl-C) exits 130 and leaves no folder that looks complete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_workflow_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``run`` and ``compare`` to the ``cytofactory`` parser."""
    run = commands.add_parser(
        "run",
        help="run an inference workflow (TOML) into a run folder with an HTML report",
        description="Fit the workflow's model to its data, check convergence (R-hat, ESS, "
        "divergences, E-BFMI), run posterior predictive checks and LOO, and write results.nc, "
        "summary.csv, diagnostics.json, figures/ and report.html to the run folder.",
    )
    run.add_argument(
        "workflow", metavar="WORKFLOW", help="workflow TOML (e.g. workflows/quickstart.toml)"
    )
    run.add_argument(
        "--out",
        metavar="DIR",
        help="run folder (default: the workflow's output.folder or runs/<name>)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    run.add_argument("--strict", action="store_true", help="exit 1 when the diagnostics gate fails")
    run.add_argument(
        "--check", action="store_true", help="validate the workflow and its data, then stop"
    )
    run.add_argument(
        "--data",
        metavar="FILE",
        help="fit this data file (tidy CSV) instead of the workflow's data.sources, e.g. a "
        "fresh cohort from `cytofactory cohort make`",
    )
    run.add_argument("--events", metavar="FILE", help="events CSV for --data")
    run.set_defaults(handler=_run)
    compare = commands.add_parser(
        "compare",
        help="compare run folders by PSIS-LOO ELPD (table + figure)",
        description="Compare fits of the same data by expected log predictive density "
        "(ArviZ compare: ELPD, SE, differences, weights, Pareto-k warnings).",
    )
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (two or more)")
    compare.add_argument(
        "--out",
        metavar="DIR",
        help="where to write compare.csv and compare.png (default: current folder)",
    )
    compare.add_argument(
        "--var",
        action="append",
        metavar="NAME",
        help="observed variable(s) to compare on (default: all common ones)",
    )
    compare.set_defaults(handler=_compare)


def _guarded(function, args: argparse.Namespace) -> int:
    from bayes.workflow.folder import RunFolderExistsError
    from bayes.workflow.schema import WorkflowError

    try:
        return function(args)
    except WorkflowError as exc:
        print(str(exc), file=sys.stderr)
        n = len(exc.problems)
        print(f"error: {n} problem{'s' if n != 1 else ''} in the workflow", file=sys.stderr)
        return EXIT_INPUT
    except RunFolderExistsError as exc:
        print(f"cytofactory: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(
            "\ninterrupted: no run folder was written (partial output in *.incomplete)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    return _guarded(_run_unguarded, args)


def _run_unguarded(args: argparse.Namespace) -> int:
    from bayes.workflow.inputs import build_model, load_data
    from bayes.workflow.run import default_output, run_workflow
    from bayes.workflow.schema import load_workflow, with_data

    if args.events and not args.data:
        print("cytofactory: error: --events needs --data", file=sys.stderr)
        return EXIT_INPUT
    loaded = load_workflow(args.workflow)
    if args.data:
        loaded = with_data(loaded, args.data, args.events)
        print(f"data: {args.data} (instead of the workflow's data.sources)")
    if args.check:
        study = load_data(loaded)
        model = build_model(loaded, study)
        print(f"valid: {loaded.workflow.name}: {study.summary_line()}; model {model.spec.name}")
        return EXIT_OK
    out = Path(args.out) if args.out else default_output(loaded)
    result = run_workflow(loaded, out, overwrite=args.overwrite)
    d = result.diagnostics
    verdict = "PASSED" if d.passed else "FAILED: " + "; ".join(d.failures)
    print(f"diagnostics gate {verdict}")
    print(
        f"wrote {result.folder} ({result.timings.get('total', 0):.0f} s); "
        f"report: {result.folder / 'report.html'}"
    )
    if not d.passed and args.strict:
        return EXIT_FAILED
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    return _guarded(_compare_unguarded, args)


def _compare_unguarded(args: argparse.Namespace) -> int:
    from bayes.workflow.compare import compare_runs

    if len(args.runs) < 2:
        print("cytofactory: error: compare needs at least two run folders", file=sys.stderr)
        return EXIT_INPUT
    try:
        table, paths = compare_runs([Path(r) for r in args.runs], Path(args.out or "."), args.var)
    except (ValueError, KeyError) as exc:
        print(f"cytofactory: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    columns = [
        c
        for c in (
            "rank",
            "elpd",
            "se",
            "elpd_diff",
            "dse",
            "p",
            "weight",
            "n_pareto_k_above_0.7",
            "warning",
        )
        if c in table.columns
    ]
    print(table[columns].to_string())
    for path in paths:
        print(f"wrote {path}")
    return EXIT_OK
