"""Fixtures of the trial-design tests: a synthetic translation and a small design file."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import write_predictions  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "workflows" / "trial_design.toml"


@pytest.fixture(scope="session")
def translation_dir(tmp_path_factory) -> Path:
    """Folder with a synthetic ``predictions.nc`` (contract layout)."""
    return write_predictions(tmp_path_factory.mktemp("translation"))


@pytest.fixture()
def small_design(tmp_path) -> Path:
    """The shipped workflow with few trials, small batches and a coarse BLRM grid."""
    text = WORKFLOW.read_text()
    # the synthetic predictions name their scenarios differently: select levels by cavity
    text = re.sub(r"^scenarios = \[.*\]\n", "", text, flags=re.MULTILINE)
    text = text.replace("n_trials = 2000", "n_trials = 60").replace(
        "batch_size = 200", "batch_size = 20"
    )
    text = text.replace(
        'prior = "translational"',
        'prior = "translational"\ntranslational_prior_draws = 300\ngrid_points = 41',
    )
    path = tmp_path / "design.toml"
    path.write_text(text)
    return path
