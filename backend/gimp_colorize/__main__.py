"""`python -m gimp_colorize ...`: the same as the `gimp-colorize` console script (the plug-ins use this form)."""

from .cli import main

raise SystemExit(main())
