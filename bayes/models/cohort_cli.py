"""The ``cytofactory cohort make`` command (registered in :mod:`bayes.cli`)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


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
