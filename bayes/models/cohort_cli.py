"""The ``cytofactory cohort make`` command (registered in :mod:`bayes.cli`)."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bayes.models.virtual_cohort import CohortRecipe


def add_cohort_command(commands: argparse._SubParsersAction) -> None:
    """Add ``cohort make RECIPE --out DIR [--seed S]`` to the command line."""
    cohort = commands.add_parser("cohort", help="simulate virtual mouse cohorts")
    sub = cohort.add_subparsers(dest="cohort_command", metavar="SUBCOMMAND", required=True)
    make = sub.add_parser(
        "make",
        help="simulate a cohort from a recipe and compare it with the published figures",
        description="Simulate the cohort of a recipe TOML (design + generating parameters + "
        "seed) through the CF-IL2 model's likelihood graph; write observations.csv and "
        "events.csv (tidy format, marked SYNTHETIC), the recipe, and published_vs_cohort.csv "
        "(each published figure, the cohort's value, the accepted range).",
    )
    make.add_argument("recipe", metavar="RECIPE", help="cohort recipe TOML")
    make.add_argument("--out", required=True, metavar="DIR", help="output folder")
    make.add_argument("--seed", type=int, help="random seed (default: the recipe's)")
    make.set_defaults(handler=_make)
    recovery = sub.add_parser(
        "recovery",
        help="compare a run's posterior with the generating values of a cohort recipe",
        description="For a run folder (`cytofactory run`) fitted to a synthetic cohort, compare "
        "each generating population parameter of the cohort's recipe with its posterior median "
        "and central interval; write recovery.csv (parameter, true, median, low, high, inside).",
    )
    recovery.add_argument("run", metavar="RUN_DIR", help="run folder with results.nc")
    recovery.add_argument(
        "--recipe", required=True, metavar="RECIPE", help="the cohort's recipe TOML"
    )
    recovery.add_argument(
        "--prob", type=float, default=0.9, help="central interval mass (default 0.9)"
    )
    recovery.add_argument(
        "--out", metavar="FILE", help="CSV to write (default: RUN_DIR/recovery.csv)"
    )
    recovery.set_defaults(handler=_recovery)


def _make(args: argparse.Namespace) -> int:
    from bayes.cli import EXIT_OK
    from bayes.data import read_tidy
    from bayes.models.published_check import compare_with_published
    from bayes.models.virtual_cohort import design_info, load_recipe, make_cohort, write_cohort

    recipe = load_recipe(args.recipe)
    seed = recipe.seed if args.seed is None else args.seed
    print(f"simulating cohort {recipe.name!r} (seed {seed}); the first run compiles the model")
    study = make_cohort(recipe, seed)
    out = Path(args.out)
    paths = write_cohort(study, recipe, out, seed)
    written = read_tidy(paths["observations"], paths["events"])
    table = compare_with_published(written, design_info(recipe))
    table_path = out / "published_vs_cohort.csv"
    table.to_csv(table_path, index=False, lineterminator="\n")
    if Path(args.recipe).resolve() != (out / "recipe.toml").resolve():
        shutil.copyfile(args.recipe, out / "recipe.toml")
    for role, path in {**paths, "comparison": table_path}.items():
        print(f"wrote {path} ({role})")
    for row in table.itertuples():
        mark = "ok " if row.within else "OFF"
        print(
            f"  {mark} {row.id:28s} {row.cohort_value:8.3g}  [{row.accepted_low:g}, "
            f"{row.accepted_high:g}]  {row.detail}"
        )
    print(f"{int(table['within'].sum())} of {len(table)} published figures within tolerance")
    return EXIT_OK


def _recovery(args: argparse.Namespace) -> int:
    import xarray as xr

    from bayes.cli import EXIT_INPUT, EXIT_OK
    from bayes.models.recovery import format_recovery, recovery_table
    from bayes.models.virtual_cohort import cohort_model, design_study, load_recipe
    from bayes.workflow.folder import atomic_write_text

    recipe = load_recipe(args.recipe)
    try:
        results = Path(args.run) / "results.nc"
        if not results.is_file():
            raise ValueError(f"{args.run} is not a complete run folder (no results.nc)")
        with xr.open_datatree(results, engine="netcdf4") as tree:
            posterior = tree["posterior"].to_dataset().load()
            _check_same_reference(tree.attrs.get("config"), recipe)
        identified = cohort_model(recipe, design_study(recipe)).spec.identified
        table = recovery_table(posterior, recipe.parameters, identified, args.prob)
    except ValueError as exc:
        print(f"cytofactory: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    out = Path(args.out) if args.out else Path(args.run) / "recovery.csv"
    atomic_write_text(out, table.to_csv(index=False, lineterminator="\n"))
    print(format_recovery(table, args.prob))
    print(f"wrote {out}")
    return EXIT_OK


def _check_same_reference(config: str | None, recipe: CohortRecipe) -> None:
    """Refuse a run whose burden offsets are relative to another reference than the cohort's.

    ``log_burden0``, ``extinction_log_burden`` and ``carrying_log_capacity`` are offsets from the
    model's reference burden; compared with the recipe's values they mean the same only if the
    fit used the reference the cohort was generated with. Runs without a stored config (older
    or hand-made result files) are not checked.
    """
    if not config:
        return
    model = json.loads(config).get("model", {})
    if model.get("kind") != "cf_il2":
        return
    fitted = (model.get("options") or {}).get("burden_reference")
    generated = recipe.model.burden_reference or recipe.design.baseline_median
    if fitted is None or not math.isclose(float(fitted), generated, rel_tol=1e-9):
        raise ValueError(
            f"the run's burden reference is {fitted or 'the median first observation'}, the "
            f"cohort's is {generated:g}: the burden offsets (log_burden0, "
            "extinction_log_burden, carrying_log_capacity) would be compared on different "
            f"scales; set burden_reference = {generated:g} in the workflow's [model] options"
        )
