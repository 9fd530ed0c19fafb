"""Simulation-based calibration and parameter recovery of a workflow (``cytofactory calibrate``).

Sits beside the command line (like :mod:`bayes.workflow`): drives the model and inference
layers on dask.distributed and writes tables, figures and a summary.
"""

from bayes.calibrate.config import CalibrationInputError, CalibrationSettings, load_fixed
from bayes.calibrate.run import CalibrationResult, calibrate

__all__ = [
    "CalibrationInputError",
    "CalibrationResult",
    "CalibrationSettings",
    "calibrate",
    "load_fixed",
]
