"""Generate the bundled SYNTHETIC one-compartment oral PK data set (NONMEM-style, fixed seed).

SYNTHETIC DATA -- not measurements. It exists to show the "your own model" path of the README:
a user-defined ODE model fitted through the same hierarchy, likelihood and checks as the CF-IL2
model. Truth: one oral dose of 10 mg at time 0, first-order absorption (ka 1.0 /h), linear
elimination (CL 10 L/h, V 50 L), log-normal between-subject variability (SD 0.3 on ka and CL, 0.2
on V), proportional residual error (SD 0.15 on the log scale), LLOQ 1 ng/mL (values below are
flagged CENS=1 with DV = LIMIT). Concentration (ng/mL = ug/L) follows the Bateman function.

Writes ``oral_pk_nonmem.csv`` next to this script (its mapping is ``oral_pk_nonmem.toml``).
Run: ``python datasets/examples/make_oral_pk.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261126
HERE = Path(__file__).resolve().parent
N_SUBJECTS = 10
DOSE_MG = 10.0
TIMES_H = [0.25, 0.5, 1, 2, 4, 6, 8, 12, 24, 36, 48]
TRUTH = {"ka": 1.0, "cl": 10.0, "v": 50.0}  # 1/h, L/h, L
OMEGA = {"ka": 0.3, "cl": 0.3, "v": 0.2}
SIGMA = 0.15
LLOQ = 1.0  # ng/mL


def concentration(t_h: np.ndarray, ka: float, cl: float, v: float) -> np.ndarray:
    """Bateman function, ng/mL, for the 10 mg dose (ug / L = ng / mL)."""
    k = cl / v
    return DOSE_MG * 1000.0 * ka / (v * (ka - k)) * (np.exp(-k * t_h) - np.exp(-ka * t_h))


def simulate() -> pd.DataFrame:
    """Return the NONMEM-style table."""
    rng = np.random.default_rng(SEED)
    rows = []
    for subject in range(1, N_SUBJECTS + 1):
        theta = {k: TRUTH[k] * np.exp(OMEGA[k] * rng.normal()) for k in TRUTH}
        rows.append([subject, 0.0, ".", DOSE_MG, 1, 1, 1, 0, ""])
        times = np.array(TIMES_H)
        values = concentration(times, **theta) * np.exp(SIGMA * rng.normal(size=times.size))
        for time, value in zip(times, values, strict=True):
            censored = value < LLOQ
            dv = LLOQ if censored else round(float(value), 4)
            rows.append([subject, time, dv, ".", 0, 2, 0, int(censored), LLOQ if censored else ""])
    columns = ["ID", "TIME", "DV", "AMT", "EVID", "CMT", "MDV", "CENS", "LIMIT"]
    return pd.DataFrame(rows, columns=columns)


def main() -> None:
    """Write the CSV with a header line saying it is synthetic."""
    path = HERE / "oral_pk_nonmem.csv"
    header = f"# SYNTHETIC one-compartment oral PK data from make_oral_pk.py (seed {SEED})\n"
    path.write_text(header + simulate().to_csv(index=False))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
