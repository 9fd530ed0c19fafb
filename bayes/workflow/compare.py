"""Compare run folders by PSIS-LOO (``cytofactory compare``): a CSV table and a figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from bayes.inference.loo import compare_fits
from bayes.workflow.folder import atomic_write_text


def load_run(folder: Path) -> xr.DataTree:
    """Open a run folder's ``results.nc``.

    Raises
    ------
    ValueError
        If ``folder`` is not a complete run folder or holds no log-likelihood.
    """
    path = Path(folder) / "results.nc"
    if not path.is_file():
        raise ValueError(f"{folder} is not a complete run folder (no results.nc)")
    tree = xr.open_datatree(path, engine="netcdf4").load()
    if "log_likelihood" not in tree.children:
        raise ValueError(f"{path} has no log_likelihood group; rerun with checks.loo = true")
    return tree


def _labels(folders: Sequence[Path], trees: Sequence[xr.DataTree]) -> list[str]:
    labels = [
        tree.attrs.get("workflow") or folder.name
        for folder, tree in zip(folders, trees, strict=True)
    ]
    if len(set(labels)) < len(labels):
        labels = [str(folder) for folder in folders]
    return labels


def compare_runs(
    folders: Sequence[Path], out: Path, var_names: Sequence[str] | None = None
) -> tuple[pd.DataFrame, list[Path]]:
    """Compare runs; write ``compare.csv`` and ``compare.png`` to ``out``.

    Raises
    ------
    ValueError
        If a folder is not a run, or the runs are not fits of the same data.
    """
    trees = [load_run(folder) for folder in folders]
    hashes = {tree.attrs.get("study_hash") for tree in trees}
    if len(hashes) > 1:
        raise ValueError(
            "the runs were fitted to different data (study hashes differ); LOO compares fits "
            "of the same observations"
        )
    fits = dict(zip(_labels(folders, trees), trees, strict=True))
    table = compare_fits(fits, var_names)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "compare.csv"
    frame = table.copy()
    frame.index.name = "run"
    atomic_write_text(csv, frame.to_csv())
    meta = {"runs": [str(f) for f in folders], "variables": table.attrs.get("variables")}
    atomic_write_text(out / "compare.json", json.dumps(meta, indent=2))
    return table, [csv, _figure(table, out / "compare.png"), out / "compare.json"]


def _figure(table: pd.DataFrame, path: Path) -> Path:
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    pc = az.plot_compare(table, backend="matplotlib")
    tmp = path.with_name(f".{path.stem}.tmp.png")
    pc.savefig(tmp, dpi=90, bbox_inches="tight")
    tmp.replace(path)
    return path
