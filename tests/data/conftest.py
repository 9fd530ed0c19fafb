"""Shared fixtures for the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
EXAMPLES = REPO / "datasets" / "examples"
MAPPINGS = REPO / "datasets" / "mappings"

OBS_HEADER = "subject,group,time,analyte,value,unit,censored,limit\n"
GOOD_OBS = (
    OBS_HEADER
    + "m1,ctrl,0,tumour_volume,100,mm^3,0,\n"
    + "m1,ctrl,2,tumour_volume,150,mm^3,0,\n"
    + "m1,ctrl,1,il2_serum,,pg/mL,1,5\n"
    + "m2,hi,0,tumour_volume,0.1,cm^3,0,\n"
    + "m2,hi,1,il2_serum,20,pg/mL,0,5\n"
)


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data folder next to the repo; skip when it is absent (fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not present (fresh clone): real-data tests need it")
    return SHARED_DATA.resolve()


@pytest.fixture
def write(tmp_path: Path):
    """Write ``text`` to ``tmp_path / name`` and return the path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
