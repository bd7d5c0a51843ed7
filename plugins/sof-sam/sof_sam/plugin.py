"""The ``sam`` plugin entry point.

``sof_sam`` is a compatibility layer rather than a source of skills, so it registers no
hooks yet; the entry point exists so ``sof plugins`` lists it and hosts can see that SAM's
API is installed.
"""

from __future__ import annotations
