"""Mouse-to-human translation: species scaling with uncertainty, human dosing scenarios.

- :mod:`bayes.translate.config`: translation priors (``priors/translation.toml``) and scenario
  files (``workflows/human_dosing.toml``), validated with key-naming errors;
- :mod:`bayes.translate.posterior`: mouse draws from ``results.nc``, a run folder or a prior set;
- :mod:`bayes.translate.uncertainty`: random inputs grouped by uncertainty source;
- :mod:`bayes.translate.scaling`: the mouse-to-human mapping of every parameter;
- :mod:`bayes.translate.closed_form`, :mod:`bayes.translate.exposure`: vectorised curves,
  exposures, immune and tumour effect;
- :mod:`bayes.translate.human_pk`: checks against published human IL-2 PK;
- :mod:`bayes.translate.decomposition`: variance shares by source;
- :mod:`bayes.translate.run`: ``predictions.nc`` and ``summary.csv`` (``cytofactory translate``).
"""

from bayes.translate.config import (
    Scenario,
    TranslationPriors,
    load_scenarios,
    load_translation_priors,
    resolve_scenarios,
)
from bayes.translate.posterior import MousePosterior, load_posterior, prior_results_tree
from bayes.translate.run import Translation, run_translation, summary_table, write_outputs
from bayes.translate.uncertainty import SOURCES, TranslationDraws, draw_inputs

__all__ = [
    "SOURCES",
    "MousePosterior",
    "Scenario",
    "Translation",
    "TranslationDraws",
    "TranslationPriors",
    "draw_inputs",
    "load_posterior",
    "load_scenarios",
    "load_translation_priors",
    "prior_results_tree",
    "resolve_scenarios",
    "run_translation",
    "summary_table",
    "write_outputs",
]
