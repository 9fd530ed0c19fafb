"""Full runs of the shipped workflows (slow: minutes each on 2 cores).

The quickstart must pass the diagnostics gate; the real-data workflows need ../shared/data.
"""

import json
from pathlib import Path

import pytest

from bayes.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def run(name: str, out: Path) -> dict:
    assert main(["run", str(ROOT / "workflows" / name), "--out", str(out), "--strict"]) == 0
    for file in ("results.nc", "summary.csv", "report.html", "loo.csv"):
        assert (out / file).is_file()
    return json.loads((out / "diagnostics.json").read_text())


def test_quickstart_passes_the_gate(tmp_path):
    diagnostics = run("quickstart.toml", tmp_path / "quickstart")
    assert diagnostics["passed"] and diagnostics["divergences"] == 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="real data in ../shared/data is absent")
@pytest.mark.parametrize(
    "name", ["inspectumours_growth_treatment.toml", "eigenmann2016_pk_tgi.toml"]
)
def test_real_data_workflows_pass_the_gate(name, tmp_path):
    assert run(name, tmp_path / "run")["passed"]
