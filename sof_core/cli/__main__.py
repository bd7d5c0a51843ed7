"""``python -m sof_core.cli``: the same as the ``sof`` console script."""

import sys

from sof_core.cli.main import main

sys.exit(main())
