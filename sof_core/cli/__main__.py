"""``python -m sof_core.cli``: the same as the ``sof`` console script."""

from sof_core._console import main

main()
