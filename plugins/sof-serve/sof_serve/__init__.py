"""SOF as an HTTP service: the app, the monitoring page, and observers (``observe``).

``create_app`` builds the ASGI app (``sof serve`` runs it on uvicorn); a Python host mounts
the same routes in its own ASGI app. Importing this package stays cheap: the app and its
dependencies load on first use of ``create_app`` or ``SOFService``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sof_core import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sof_serve.app import create_app
    from sof_serve.service import SOFService
    from sof_serve.settings import ServeSettings

_LAZY = {"create_app": "sof_serve.app", "SOFService": "sof_serve.service",
         "ServeSettings": "sof_serve.settings"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["SOFService", "ServeSettings", "__version__", "create_app"]
