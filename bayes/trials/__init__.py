"""First-in-human trial simulation: escalation designs and operating characteristics.

- :mod:`bayes.trials.config` -- the trial-design TOML (pydantic, immutable).
- :mod:`bayes.trials.truths` -- per-trial truths from the translation's ``/exposure`` group
  (posterior draw x uncertain exposure-event links x virtual patients).
- :mod:`bayes.trials.designs` -- 3+3, BOIN, BLRM-EWOC; :mod:`bayes.trials.blrm` -- the exact
  grid posterior of the two-parameter BLRM.
- :mod:`bayes.trials.simulate` -- batches of trials (the dask task), every design on the same
  truths; :mod:`bayes.trials.run` -- a whole run on a dask client (``bayes.parallel``).
- :mod:`bayes.trials.oc` -- operating characteristics; :mod:`bayes.trials.cli` -- ``cytofactory
  trial``.

Nothing is imported here, so dask workers only load the modules their tasks need.
"""
