"""Model components and the hierarchical model back-end.

- :mod:`bayes.models.spec` -- :class:`ModelSpec`, :class:`Observable`, :class:`DoseRoute`: the
  user-facing description of a hierarchical ODE model (the CF-IL2 model or your own).
- :mod:`bayes.models.hierarchical` -- :class:`HierarchicalModel`: spec + priors + data -> PyMC
  model, ``fit``, ``sample_posterior_predictive``, ``simulate``, ``save``/``load``.
- :mod:`bayes.models.priors` -- :class:`Prior`, :class:`PriorSet`: priors with sources (TOML).
- :mod:`bayes.models.hierarchy` -- non-centred random effects, covariates, LKJ correlation.
- :mod:`bayes.models.observation` -- residual error models with M3 censoring.
- CF-IL2 components: :mod:`~bayes.models.release`, :mod:`~bayes.models.pk`,
  :mod:`~bayes.models.immune`, :mod:`~bayes.models.tumour`, assembled in
  :mod:`~bayes.models.cf_il2`; prior predictive check in :mod:`~bayes.models.prior_check`.
"""

from bayes.models.hierarchical import HierarchicalModel
from bayes.models.hierarchy import CovariateEffect
from bayes.models.observation import ErrorModel
from bayes.models.priors import Prior, PriorError, PriorSet
from bayes.models.spec import DoseRoute, ModelSpec, Observable

__all__ = [
    "CovariateEffect",
    "DoseRoute",
    "ErrorModel",
    "HierarchicalModel",
    "ModelSpec",
    "Observable",
    "Prior",
    "PriorError",
    "PriorSet",
]
