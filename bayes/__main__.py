"""Allow ``python -m bayes``."""

from bayes.cli import main

raise SystemExit(main())
