"""Data layer: schema, validation, readers and the canonical xarray form.

Readers (each returns a validated :class:`Study` in canonical units or raises
:class:`DataError` listing every problem with file, line and column):

- :func:`read_tidy` -- the project's tidy long CSV (+ events CSV), see :mod:`bayes.data.tidy`.
- :func:`read_nonmem` -- NONMEM-style CSV (ID, TIME, DV, AMT, EVID, CMT, MDV, CENS, LIMIT).
- :func:`read_mapped` -- other people's CSVs through a TOML column mapping.
- :func:`load_study` -- any of the above, format detected from the file.

Conversion: :func:`to_dataset` / :func:`from_dataset` (dims ``subject, obs`` and
``subject, event``), :func:`save_netcdf` / :func:`load_netcdf` (lossless round trip).
Units: :mod:`bayes.data.units` (pint; one canonical unit per dimension; IL-2 IU <-> mass with
18 MIU = 1.1 mg). The data layer knows no model.
"""

from bayes.data.dataset import from_dataset, load_netcdf, save_netcdf, to_dataset
from bayes.data.errors import DataError, DataIssue
from bayes.data.load import FORMATS, detect_format, load_study
from bayes.data.mapped import Mapping, load_mapping, read_mapped
from bayes.data.nonmem import NonmemMapping, load_nonmem_mapping, read_nonmem
from bayes.data.study import Study, combine_studies
from bayes.data.tidy import read_tidy
from bayes.data.units import IL2_IU_PER_UG, UnitError, conversion

__all__ = [
    "FORMATS",
    "IL2_IU_PER_UG",
    "DataError",
    "DataIssue",
    "Mapping",
    "NonmemMapping",
    "Study",
    "UnitError",
    "combine_studies",
    "conversion",
    "detect_format",
    "from_dataset",
    "load_mapping",
    "load_netcdf",
    "load_nonmem_mapping",
    "load_study",
    "read_mapped",
    "read_nonmem",
    "read_tidy",
    "save_netcdf",
    "to_dataset",
]
