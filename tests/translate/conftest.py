from pathlib import Path

import pytest
from translate_helpers import MOUSE_PRIORS, SMALL_SCENARIOS

from bayes.translate.posterior import prior_results_tree


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory) -> Path:
    """A run folder whose results.nc holds prior draws in a posterior group (2 x 40)."""
    folder = tmp_path_factory.mktemp("run")
    prior_results_tree(MOUSE_PRIORS, chains=2, draws=40, seed=1).to_netcdf(
        folder / "results.nc", engine="netcdf4"
    )
    return folder


@pytest.fixture()
def scenario_file(tmp_path) -> Path:
    path = tmp_path / "scenarios.toml"
    path.write_text(SMALL_SCENARIOS)
    return path
