"""Canonical ``xarray.Dataset`` form of a study, and its NetCDF round trip.

Layout of ``to_dataset(study)``:

=========================  ===================  ==============================================
name                       dims                 meaning
=========================  ===================  ==============================================
subject (coord)            (subject,)           subject id
group, dose, dose_unit     (subject,)           coords: group and the group's nominal dose
analyte, unit (coords)     (analyte,)           analyte names and their canonical units
time, value, limit         (subject, obs)       float; time in day; NaN in padding
analyte_index              (subject, obs)       int index into ``analyte``; -1 in padding
censored, mask             (subject, obs)       bool; ``mask`` False marks padding
source_row, source_file    (subject, obs)       provenance of each observation
event_time, event_kind,    (subject, event)     dosing events, ``event_mask`` False = padding
event_amount, event_unit,
event_duration, ...
covariate_<name>           (subject,)           subject-level covariates
excluded_*                 (excluded,)          rows left out, with ``excluded_reason``
=========================  ===================  ==============================================

Attributes: ``name``, ``source``, ``time_unit`` ("day"), ``covariates`` (JSON list of names),
``format`` ("cytofactory-study"), ``format_version``.
NetCDF is written with the netCDF4 engine by default (h5netcdf works when h5py is installed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes.data.study import EVENT_COLUMNS, EXCLUDED_COLUMNS, OBSERVATION_COLUMNS, Study

FORMAT = "cytofactory-study"
FORMAT_VERSION = 1
_FILL = {"float64": np.nan, "int64": -1, "bool": False, "str": ""}
_OBS_VARS = ["time", "value", "censored", "limit", "source_row", "source_file"]
_EVENT_VARS = ["time", "kind", "amount", "unit", "duration", "source_row", "source_file"]


def _ragged(frame: pd.DataFrame, subjects: list[str], names: list[str], dtypes: dict) -> dict:
    """Pad per-subject rows into (subject, k) arrays plus a mask."""
    rank = {s: i for i, s in enumerate(subjects)}
    row = frame["subject"].map(rank).to_numpy(dtype=int)
    col = frame.groupby("subject", sort=False).cumcount().to_numpy(dtype=int)
    width = int(col.max()) + 1 if len(frame) else 0
    out = {}
    for name in names:
        dtype = dtypes[name]
        array = np.full(
            (len(subjects), width), _FILL[dtype], dtype=object if dtype == "str" else dtype
        )
        array[row, col] = frame[name].to_numpy(dtype=object if dtype == "str" else dtype)
        out[name] = array.astype(str) if dtype == "str" else array
    mask = np.zeros((len(subjects), width), dtype=bool)
    mask[row, col] = True
    out["mask"] = mask
    return out


def to_dataset(study: Study) -> xr.Dataset:
    """Convert a :class:`Study` to the canonical Dataset (see module docstring).

    Parameters
    ----------
    study : Study
        The study to convert.

    Returns
    -------
    xarray.Dataset

    """
    subjects = study.subjects
    obs = study.observations
    analytes = list(dict.fromkeys(obs["analyte"]))
    obs = obs.assign(analyte_index=obs["analyte"].map({a: i for i, a in enumerate(analytes)}))
    dtypes = {**OBSERVATION_COLUMNS, "analyte_index": "int64"}
    padded = _ragged(obs, subjects, [*_OBS_VARS, "analyte_index"], dtypes)
    data = {name: (("subject", "obs"), array) for name, array in padded.items()}
    events = _ragged(study.events, subjects, _EVENT_VARS, EVENT_COLUMNS)
    data.update({f"event_{k}": (("subject", "event"), v) for k, v in events.items()})
    data.update(_covariate_vars(study))
    data.update(_excluded_vars(study))
    ds = xr.Dataset(data, coords=_coords(study, subjects, analytes))
    ds["time"].attrs["units"] = "day"
    ds["event_time"].attrs["units"] = "day"
    ds["event_duration"].attrs["units"] = "day"
    ds.attrs.update(
        name=study.name,
        source=study.source,
        time_unit="day",
        covariates=json.dumps([c for c in study.covariates.columns if c != "subject"]),
        format=FORMAT,
        format_version=FORMAT_VERSION,
    )
    return ds


def _coords(study: Study, subjects: list[str], analytes: list[str]) -> dict:
    first = study.observations.drop_duplicates("subject").set_index("subject")["group"]
    groups = study.groups.set_index("group")
    group = first.loc[subjects].to_numpy(dtype=str)
    units = study.units
    return {
        "subject": ("subject", np.array(subjects, dtype=str)),
        "group": ("subject", group),
        "dose": ("subject", groups.loc[group, "dose"].to_numpy(dtype="float64")),
        "dose_unit": ("subject", groups.loc[group, "dose_unit"].to_numpy(dtype=str)),
        "analyte": ("analyte", np.array(analytes, dtype=str)),
        "unit": ("analyte", np.array([units[a] for a in analytes], dtype=str)),
    }


def _covariate_vars(study: Study) -> dict:
    cov = study.covariates
    out = {}
    for name in cov.columns.drop("subject"):
        dtype = "float64" if pd.api.types.is_float_dtype(cov[name]) else str
        out[f"covariate_{name}"] = ("subject", cov[name].to_numpy(dtype=dtype))
    return out


def _excluded_vars(study: Study) -> dict:
    ex = study.excluded
    return {
        f"excluded_{name}": ("excluded", ex[name].to_numpy(dtype=str if t == "str" else t))
        for name, t in EXCLUDED_COLUMNS.items()
    }


def _unpad(ds: xr.Dataset, prefix: str, dim: str, names: list[str]) -> pd.DataFrame:
    mask = ds[f"{prefix}mask"].to_numpy().astype(bool)
    subject_index = np.nonzero(mask)[0]
    frame = {"subject": ds["subject"].to_numpy().astype(str)[subject_index]}
    for name in names:
        frame[name] = ds[f"{prefix}{name}"].to_numpy()[mask]
    return pd.DataFrame(frame)


def from_dataset(ds: xr.Dataset) -> Study:
    """Rebuild the :class:`Study` from a Dataset made by :func:`to_dataset`.

    Raises
    ------
    ValueError
        If ``ds`` is not a study Dataset.

    """
    if ds.attrs.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} Dataset (attrs['format'] is {ds.attrs.get('format')!r})")
    obs = _unpad(ds, "", "obs", [*_OBS_VARS, "analyte_index"])
    analytes = ds["analyte"].to_numpy().astype(str)
    units = ds["unit"].to_numpy().astype(str)
    index = obs.pop("analyte_index").to_numpy(dtype=int)
    obs["analyte"], obs["unit"] = analytes[index], units[index]
    subject_group = pd.Series(ds["group"].to_numpy().astype(str), index=ds["subject"].to_numpy())
    obs["group"] = obs["subject"].map(subject_group)
    events = _unpad(ds, "event_", "event", _EVENT_VARS)
    return Study(
        observations=obs,
        events=events,
        covariates=_covariates_from(ds),
        groups=_groups_from(ds),
        excluded=pd.DataFrame(
            {name: ds[f"excluded_{name}"].to_numpy() for name in EXCLUDED_COLUMNS}
        ).astype({n: "int64" for n, t in EXCLUDED_COLUMNS.items() if t == "int64"}),
        source=str(ds.attrs.get("source", "")),
        name=str(ds.attrs.get("name", "study")),
    )


def _covariates_from(ds: xr.Dataset) -> pd.DataFrame:
    out = pd.DataFrame({"subject": ds["subject"].to_numpy().astype(str)})
    for name in json.loads(ds.attrs.get("covariates", "[]")):
        values = ds[f"covariate_{name}"].to_numpy()
        out[name] = values.astype("float64") if values.dtype.kind == "f" else values.astype(str)
    return out


def _groups_from(ds: xr.Dataset) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "group": ds["group"].to_numpy().astype(str),
            "dose": ds["dose"].to_numpy().astype("float64"),
            "dose_unit": ds["dose_unit"].to_numpy().astype(str),
        }
    )
    return table.drop_duplicates("group").reset_index(drop=True)


def save_netcdf(study_or_dataset: Study | xr.Dataset, path: str | Path, engine: str = "netcdf4"):
    """Write a study (or its Dataset) to NetCDF-4 and return the path."""
    ds = study_or_dataset
    if isinstance(ds, Study):
        ds = to_dataset(ds)
    ds.to_netcdf(path, engine=engine)
    return Path(path)


def load_netcdf(path: str | Path, engine: str = "netcdf4") -> xr.Dataset:
    """Read a study Dataset written by :func:`save_netcdf` (fully loaded, file closed)."""
    return xr.load_dataset(path, engine=engine)
