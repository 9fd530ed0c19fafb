"""Random inputs of the translation, grouped by uncertainty source.

Five sources (:data:`SOURCES`):

- ``mouse_posterior``: the mouse population parameters, one set per posterior draw;
- ``scaling``: allometric exponents, capsule performance and output decline in humans, cavity
  absorption and volume factors (one value per draw);
- ``human_pk``: human IL-2 PK from published data, human tumour growth and anti-PD-1 decline
  (one value per draw);
- ``between_patient``: body weight, clearance, capsule performance, kill rate, growth rate and
  effusion volume of each virtual patient (one value per draw and patient);
- ``potency``: species differences in EC50 and immune kill (one value per draw).

Every source other than the mouse posterior is stored as standard-normal deviates ``z`` and turned
into values through each prior's quantile function (:func:`prior_values`), so a source *fixed at
its median* is simply ``z = 0`` (and, for the mouse posterior, the per-parameter median). The same
deviates are used for every scenario (common random numbers), so scenario differences are not
blurred by Monte Carlo noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtr

from bayes.models.priors import Prior
from bayes.translate.config import TranslationPriors
from bayes.translate.posterior import MousePosterior

__all__ = [
    "PATIENT_NAMES",
    "POPULATION_NAMES",
    "SOURCES",
    "TranslationDraws",
    "draw_inputs",
    "prior_values",
]

SOURCES = ("mouse_posterior", "scaling", "human_pk", "between_patient", "potency")
POPULATION_NAMES: dict[str, tuple[str, ...]] = {
    "scaling": (
        "clearance_exponent",
        "local_clearance_exponent",
        "volume_exponent",
        "capsule_performance",
        "release_fade",
        "absorption_factor",
        "volume_factor",
    ),
    "human_pk": (
        "clearance",
        "half_life_alpha",
        "half_life_beta",
        "alpha_fraction",
        "growth_rate",
        "pd1_decay",
    ),
    "potency": ("ec50_factor", "kill_factor"),
}
"""Standard-normal deviates with one value per draw, by source."""
PATIENT_NAMES = (
    "body_weight",
    "clearance",
    "capsule_performance",
    "kill_rate",
    "growth_rate",
    "effusion_volume",
)
"""Standard-normal deviates with one value per draw and virtual patient."""


def prior_values(prior: Prior, z: np.ndarray) -> np.ndarray:
    """Map standard-normal deviates ``z`` to values of ``prior`` (quantile transform).

    ``z = 0`` gives the prior median; for a LogNormal this is ``exp(mu + sigma z)`` exactly.
    """
    params = prior.params
    if prior.distribution == "LogNormal":
        return np.exp(params["mu"] + params["sigma"] * z)
    if prior.distribution == "Normal":
        return params["mu"] + params["sigma"] * z
    return prior.to_scipy().ppf(ndtr(z))


@dataclass(frozen=True)
class TranslationDraws:
    """All random inputs of one translation.

    Attributes
    ----------
    mouse : dict of str to numpy.ndarray
        Mouse population parameters, shape ``(draw,)``.
    population : dict of str to dict of str to numpy.ndarray
        Per-draw standard-normal deviates by source (:data:`POPULATION_NAMES`).
    patient : dict of str to numpy.ndarray
        Per-patient standard-normal deviates, shape ``(draw, patient)``.
    allometry_weight : float
        Weight of the allometric prediction in the combined human clearance (``method =
        "combine"``), fixed from the full-uncertainty draws.
    fixed_sources : tuple of str
        Sources set to their medians.
    """

    mouse: dict[str, np.ndarray]
    population: dict[str, dict[str, np.ndarray]]
    patient: dict[str, np.ndarray]
    allometry_weight: float
    fixed_sources: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """``(draws, patients)``."""
        return self.patient["body_weight"].shape

    def fixed(self, sources: Iterable[str]) -> TranslationDraws:
        """Return a copy with the named sources fixed at their medians.

        Raises
        ------
        ValueError
            For an unknown source name.
        """
        sources = tuple(sources)
        unknown = [s for s in sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"unknown uncertainty source(s) {unknown}; choose from {SOURCES}")
        mouse, population, patient = self.mouse, dict(self.population), self.patient
        if "mouse_posterior" in sources:
            mouse = {k: np.full_like(v, np.median(v)) for k, v in mouse.items()}
        for source in sources:
            if source in population:
                population[source] = {k: np.zeros_like(v) for k, v in population[source].items()}
        if "between_patient" in sources:
            patient = {k: np.zeros_like(v) for k, v in patient.items()}
        return replace(
            self,
            mouse=mouse,
            population=population,
            patient=patient,
            fixed_sources=tuple(dict.fromkeys((*self.fixed_sources, *sources))),
        )

    def subset(self, draws: int, patients: int) -> TranslationDraws:
        """Return the first ``draws`` draws (evenly spaced) and first ``patients`` patients."""
        n_draws, n_patients = self.shape
        index = np.unique(np.linspace(0, n_draws - 1, min(draws, n_draws)).round().astype(int))
        keep = slice(0, min(patients, n_patients))
        return replace(
            self,
            mouse={k: v[index] for k, v in self.mouse.items()},
            population={
                s: {k: v[index] for k, v in group.items()} for s, group in self.population.items()
            },
            patient={k: v[index][:, keep] for k, v in self.patient.items()},
        )


def draw_inputs(
    posterior: MousePosterior, priors: TranslationPriors, patients: int, seed: int
) -> TranslationDraws:
    """Draw every random input of a translation.

    Parameters
    ----------
    posterior : MousePosterior
        Mouse population draws (their number sets the number of draws).
    priors : TranslationPriors
        Translation priors (used here for the allometry weight of the combined clearance).
    patients : int
        Virtual patients per draw.
    seed : int
        Seed of the deviates.

    Returns
    -------
    TranslationDraws
    """
    rng = np.random.default_rng(seed)
    n = posterior.n_draws
    population = {
        source: {name: rng.standard_normal(n) for name in names}
        for source, names in POPULATION_NAMES.items()
    }
    patient = {name: rng.standard_normal((n, patients)) for name in PATIENT_NAMES}
    weight = allometry_weight(posterior.values, population, priors)
    return TranslationDraws(dict(posterior.values), population, patient, weight)


def allometric_log_clearance(
    mouse: dict[str, np.ndarray], exponent: np.ndarray, priors: TranslationPriors
) -> np.ndarray:
    """Return ln of the allometric human clearance (mL/day) at the reference weight, per draw."""
    ratio = priors.human_pk.reference_weight_kg * 1000.0 / priors.scaling.mouse_weight_g
    return np.log(mouse["k_sys"] * mouse["v_sys"]) + exponent * np.log(ratio)


def allometry_weight(
    mouse: dict[str, np.ndarray],
    population: dict[str, dict[str, np.ndarray]],
    priors: TranslationPriors,
) -> float:
    """Return the precision weight ``w`` of the allometric clearance (``method`` dependent).

    ``combine``: ``w = var_human / (var_allometric + var_human)`` on the log scale, variances over
    draws; ``human``: 0; ``allometry``: 1.
    """
    method = priors.human_pk.method
    if method == "human":
        return 0.0
    if method == "allometry":
        return 1.0
    exponent = prior_values(
        priors.scaling.clearance_exponent, population["scaling"]["clearance_exponent"]
    )
    var_allometric = float(np.var(allometric_log_clearance(mouse, exponent, priors)))
    human = prior_values(priors.human_pk.clearance, population["human_pk"]["clearance"])
    var_human = float(np.var(np.log(human)))
    if var_allometric + var_human == 0.0:
        return 0.5
    return var_human / (var_allometric + var_human)
