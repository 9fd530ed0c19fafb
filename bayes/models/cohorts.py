"""Experimental designs for virtual mouse cohorts (prior checks, synthetic cohorts, SBC).

A design is a :class:`~bayes.data.Study` whose values are placeholders: subjects, groups, sampling
times, detection limits and dosing events. :meth:`HierarchicalModel.simulate` fills in values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayes.data import Study

DEFAULT_GROUPS: Mapping[str, tuple[float, bool]] = {
    "control": (0.0, False),
    "cf_1.5ug": (1.5, False),
    "cf_2.5ug": (2.5, False),
    "cf_5ug": (5.0, False),
    "cf_2.5ug_pd1": (2.5, True),
}
"""Group -> (capsule output ug/day, anti-PD-1). Doses of the public accounts of Nash 2022,
read as ug/day per mouse (our assumption: the accounts give no time unit)."""


def mouse_design(
    groups: Mapping[str, tuple[float, bool]] = DEFAULT_GROUPS,
    mice_per_group: int | Mapping[str, int] = 8,
    burden_days: Sequence[float] = tuple(range(0, 43, 3)),
    il2_days: Sequence[float] = (2.0, 7.0),
    burden_analyte: str = "tumour_volume",
    burden_unit: str = "mm^3",
    baseline_burden: float | Mapping[str, float] = 100.0,
    detection_limit: float = 1.0,
    il2_lloq_ng_ml: float = 0.005,
    antibody_days: Sequence[float] = (0.0, 3.0, 6.0),
    antibody_ug: float = 200.0,
) -> Study:
    """Return a mouse study design with placeholder values.

    Parameters
    ----------
    groups : mapping
        Group name -> (capsule output in ug/day, whether anti-PD-1 is given).
    mice_per_group : int or mapping
        Mice per group, or group name -> number of mice.
    burden_days, il2_days : sequence of float
        Sampling days of tumour burden and of IL-2 (cavity fluid and serum); implant on day 0.
    burden_analyte, burden_unit : str
        Burden analyte name and unit (``tumour_volume``/``mm^3`` or ``bioluminescence``/``p/s``).
    baseline_burden : float or mapping
        Placeholder burden, or subject id (``<group>-<n>``) -> burden (each mouse's first
        observation; the CF-IL2 reference burden is their median unless the model states one).
    detection_limit : float
        Burden detection limit (same unit).
    il2_lloq_ng_ml : float
        LLOQ of the IL-2 assays (ng/mL).
    antibody_days, antibody_ug : sequence of float, float
        Anti-PD-1 schedule for groups that receive it.

    Returns
    -------
    Study
    """
    observations, events = [], []
    for group, (output, antibody) in groups.items():
        count = mice_per_group if isinstance(mice_per_group, int) else mice_per_group[group]
        for mouse in range(count):
            subject = f"{group}-{mouse + 1}"
            baseline = (
                baseline_burden
                if isinstance(baseline_burden, (int, float))
                else baseline_burden[subject]
            )
            observations += _samples(
                subject, group, burden_days, burden_analyte, burden_unit, baseline, detection_limit
            )
            for analyte in ("il2_local", "il2_serum"):
                observations += _samples(
                    subject, group, il2_days, analyte, "ng/mL", 1.0, il2_lloq_ng_ml
                )
            events.append(_event(subject, 0.0, "capsule_implant", output, "ug/day"))
            if antibody:
                events += [
                    _event(subject, d, "antibody_dose", antibody_ug, "ug") for d in antibody_days
                ]
    group_table = pd.DataFrame(
        {"group": list(groups), "dose": [g[0] for g in groups.values()], "dose_unit": "ug/day"}
    )
    return Study(
        observations=pd.DataFrame(observations),
        events=pd.DataFrame(events),
        groups=group_table,
        source="design (placeholder values)",
        name="mouse_design",
    )


def _samples(subject, group, days, analyte, unit, value, limit) -> list[dict]:
    return [
        {
            "subject": subject,
            "group": group,
            "time": float(day),
            "analyte": analyte,
            "value": value,
            "unit": unit,
            "censored": False,
            "limit": limit,
            "source_row": 0,
            "source_file": "design",
        }
        for day in days
    ]


def _event(subject: str, time: float, kind: str, amount: float, unit: str) -> dict:
    return {
        "subject": subject,
        "time": time,
        "kind": kind,
        "amount": amount,
        "unit": unit,
        "duration": np.nan,
        "source_row": 0,
        "source_file": "design",
    }
