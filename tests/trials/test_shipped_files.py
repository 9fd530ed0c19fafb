"""The shipped trial design works on the shipped translation scenarios (translate -> trial)."""

from pathlib import Path

import numpy as np

from bayes.translate.run import run_translation
from bayes.trials.config import load_design
from bayes.trials.truths import select_doses

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_design_selects_increasing_doses_from_shipped_scenarios():
    translation = run_translation(
        ROOT / "workflows" / "human_dosing.toml",
        ROOT / "priors" / "cf_il2_mouse.toml",
        draws=20,
        patients=5,
        seed=3,
        decomposition=False,
    )
    exposure = translation.tree["exposure"].to_dataset()
    design = load_design(ROOT / "workflows" / "trial_design.toml")
    levels = select_doses(exposure, design.doses)
    doses = levels[design.doses.metric].to_numpy()
    assert len(doses) == len(design.doses.scenarios) >= 3
    assert np.all(np.diff(doses) > 0)
    assert set(levels["cavity"].to_numpy()) == {design.doses.cavity}
