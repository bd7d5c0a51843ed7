"""``python -m sof_core``: the same as the ``sof`` console script (and ``python -m
sof_core.cli``), for a host whose scripts folder is not on ``PATH``."""

from sof_core._console import main

main()
