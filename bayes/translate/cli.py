"""The ``cytofactory translate`` command (registered in :mod:`bayes.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bayes.translate.uncertainty import SOURCES


def add_translate_command(commands: argparse._SubParsersAction) -> None:
    """Add ``translate SCENARIOS --posterior PATH --out DIR`` to the command line."""
    parser = commands.add_parser(
        "translate",
        help="predict human exposure, tumour effect and toxicity risk for dosing scenarios",
        description="Scale a mouse posterior to humans (allometry with uncertain exponents, "
        "cavity physiology, published human IL-2 PK, potency translation) and simulate every "
        "scenario of SCENARIOS for every draw and virtual patient. Writes predictions.nc "
        "(DataTree; group /exposure has dims draw x scenario x patient), summary.csv, figures "
        "and report.html to --out.",
    )
    parser.add_argument(
        "scenarios", metavar="SCENARIOS", help="scenario TOML (e.g. workflows/human_dosing.toml)"
    )
    parser.add_argument(
        "--posterior",
        required=True,
        metavar="PATH",
        help="run folder, its results.nc, or a prior-set TOML (prior draws)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--priors",
        metavar="FILE",
        help="translation priors (default: the "
        "scenario file's settings.translation_priors or priors/translation.toml)",
    )
    parser.add_argument("--draws", type=int, help="posterior draws to use (default: settings)")
    parser.add_argument(
        "--patients", type=int, help="virtual patients per draw (default: settings)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: settings)")
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        choices=SOURCES,
        metavar="SOURCE",
        help=f"fix an uncertainty source at its median (repeatable; {SOURCES})",
    )
    parser.add_argument(
        "--no-decomposition", action="store_true", help="skip the variance decomposition"
    )
    parser.add_argument("--no-report", action="store_true", help="skip figures and report.html")
    parser.set_defaults(handler=_translate)


def _translate(args: argparse.Namespace) -> int:
    from bayes.cli import EXIT_OK, UsageError
    from bayes.translate.run import run_translation, write_outputs

    for name in ("draws", "patients"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be at least 1")
    translation = run_translation(
        args.scenarios,
        args.posterior,
        priors_path=args.priors,
        draws=args.draws,
        patients=args.patients,
        seed=args.seed,
        fix=args.fix,
        decomposition=not args.no_decomposition,
        progress=lambda line: print(line, flush=True),
    )
    if translation.tree.attrs["posterior_kind"] == "prior":
        print("WARNING: --posterior is a prior set: these are PRIOR predictions, not a fit")
    paths = write_outputs(translation, args.out)
    if not args.no_report:
        from bayes.report.translation_report import write_translation_report

        paths += write_translation_report(translation, Path(args.out))
    for check in translation.tree["human_pk_check"].to_dataset().to_dataframe().itertuples():
        if check.within in ("True", "False"):
            print(
                f"  human i.v. check {check.quantity}: median {check.median:.4g} in "
                f"[{check.published_low:g}, {check.published_high:g}]: {check.within}"
            )
    print(
        f"simulation {translation.seconds_simulation:.1f} s, total "
        f"{translation.seconds_total:.1f} s"
    )
    for path in paths:
        print(f"wrote {path}")
    return EXIT_OK
