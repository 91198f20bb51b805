"""``python -m reconstruction.engine``: see :mod:`reconstruction.engine.cli`."""

from reconstruction.engine.cli import main

raise SystemExit(main())
