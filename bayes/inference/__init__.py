"""Model-agnostic inference: sampling (nutpie by default), diagnostics gates, PPC, LOO, SBC.

Knows nothing of cytokine factories: it works on any PyMC model.
"""

from bayes.inference.sampling import sample

__all__ = ["sample"]
