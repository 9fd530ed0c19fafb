"""Model-agnostic inference: sampling (nutpie by default), diagnostics gates, PPC, LOO, SBC.

Not yet implemented (issues 5 and 8). Knows nothing of cytokine factories.
"""
