"""A small synthetic translation ``predictions.nc`` following the issue 6/7 contract.

Exposures scale with the capsule count, times a log-normal posterior-draw factor (uncertainty)
and a log-normal patient factor (between-patient variability); local = 150 x serum (the mouse
local/systemic ratio, Nash 2022). Numbers are made up for tests, not a prediction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

CAPSULES = (1.0, 2.0, 4.0, 8.0, 16.0)
CMAX_SERUM_PER_CAPSULE = 20.0  # ng/mL
OUTPUT_PER_CAPSULE = 0.5  # ug/day
UNITS = {
    "cmax_serum": ("ng/mL", "peak serum IL-2"),
    "auc_serum": ("ng*day/mL", "serum IL-2 AUC over the horizon"),
    "cmax_local": ("ng/mL", "peak cavity IL-2"),
    "auc_local": ("ng*day/mL", "cavity IL-2 AUC over the horizon"),
    "time_above_effective": ("day", "days above the effective local concentration"),
    "tumour_effect": ("1", "fractional tumour-burden reduction at the reference time"),
}


def exposure_dataset(
    n_draws: int = 40, n_patients: int = 30, capsules=CAPSULES, seed: int = 0, cavity="peritoneal"
) -> xr.Dataset:
    """Return the ``/exposure`` Dataset (draw, scenario, patient)."""
    rng = np.random.default_rng(seed)
    capsules = np.asarray(capsules, dtype=float)
    draw_factor = np.exp(rng.normal(0.0, 0.5, size=(n_draws, 1, 1)))
    patient_factor = np.exp(rng.normal(0.0, 0.3, size=(n_draws, 1, n_patients)))
    cmax_serum = CMAX_SERUM_PER_CAPSULE * capsules[None, :, None] * draw_factor * patient_factor
    cmax_local = 150.0 * cmax_serum
    effect = cmax_local / (cmax_local + 6000.0)
    values = {
        "cmax_serum": cmax_serum,
        "auc_serum": 5.0 * cmax_serum,
        "cmax_local": cmax_local,
        "auc_local": 5.0 * cmax_local,
        "time_above_effective": 28.0 * effect,
        "tumour_effect": effect,
    }
    names = [f"{cavity} {c:g} capsules" for c in capsules]
    dataset = xr.Dataset(
        {
            name: (
                ("draw", "scenario", "patient"),
                value,
                {"units": UNITS[name][0], "long_name": UNITS[name][1]},
            )
            for name, value in values.items()
        },
        coords={
            "draw": np.arange(n_draws),
            "scenario": names,
            "patient": np.arange(n_patients),
            "capsules": ("scenario", capsules),
            "total_output_ug_per_day": ("scenario", OUTPUT_PER_CAPSULE * capsules),
            "cavity": ("scenario", [cavity] * len(capsules)),
        },
    )
    return dataset


def write_predictions(folder: Path, **kwargs) -> Path:
    """Write ``folder/predictions.nc`` (DataTree, netcdf4) and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    tree = xr.DataTree.from_dict(
        {
            "/": xr.Dataset(
                attrs={
                    "scenario_file": "synthetic",
                    "posterior_file": "synthetic",
                    "seed": 0,
                    "version": "test",
                }
            ),
            "/exposure": exposure_dataset(**kwargs),
            "/other": xr.Dataset({"anything": ("x", np.arange(3.0))}),
        }
    )
    tree.to_netcdf(folder / "predictions.nc", engine="netcdf4")
    return folder
