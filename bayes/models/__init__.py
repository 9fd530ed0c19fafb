"""Model components: capsule release, IL-2 PK, immune effect, tumour burden, hierarchy, likelihoods.

Not yet implemented (issue 4); this package holds the CF-IL2 model of DESIGN section 4.
"""
