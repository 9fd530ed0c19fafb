"""Shared constants of the translation tests."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOUSE_PRIORS = ROOT / "priors" / "cf_il2_mouse.toml"
TRANSLATION_PRIORS = ROOT / "priors" / "translation.toml"

SMALL_SCENARIOS = f"""
description = "test scenarios"
[settings]
draws = 60
patients = 12
seed = 3
translation_priors = "{TRANSLATION_PRIORS}"
decomposition_draws = 30
decomposition_patients = 8
[defaults]
output_per_capsule_ug_per_day = 1.0
horizon_days = 21.0
reference_day = 7.0
body_weight = {{ median_kg = 70.0, cv = 0.2 }}
[[scenario]]
name = "peritoneal_100"
cavity = "peritoneal"
capsules = 100
[[scenario]]
name = "peritoneal_200"
cavity = "peritoneal"
capsules = 200
[[scenario]]
name = "pleural_total_50"
cavity = "pleural"
total_output_ug_per_day = 50.0
effusion = true
anti_pd1_days = [0.0, 14.0]
"""
