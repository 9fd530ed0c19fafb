"""Bayesian inference and uncertainty quantification for IL-2 cytokine factories.

Layers (dependencies run one way): ``cli`` -> ``trials`` -> ``translate`` -> ``models``
-> (``inference``, ``ode``, ``data``); ``report`` is used by the command line only.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cytokine-factory-bayes")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
