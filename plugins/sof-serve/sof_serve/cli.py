"""``sof serve``: run the HTTP service and monitoring page on uvicorn.

Binds 127.0.0.1 unless ``--host`` says otherwise: exposing SOF beyond the machine is a
decision, not a default. Settings come from ``plugin_settings.serve``; the options here win.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve SOF over HTTP: the API, /metrics and the monitoring page",
        description="Serve SOF over HTTP (docs/operations.md): POST /v1/query and the rest "
        "of the API, /metrics, and the monitoring page at /. Admin endpoints need "
        "SOF_ADMIN_TOKEN in the environment.",
    )
    p.add_argument("--host", default=None,
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default 8765; 0: any free)")
    p.add_argument("--legacy", default=None, metavar="MODULE:CALLABLE",
                   help="the legacy pipeline (default: the fixed default_plan)")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default warning)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sof_core.config import load_config
    from sof_serve.app import create_app
    from sof_serve.server import GRACEFUL_SHUTDOWN, uvicorn_config
    from sof_serve.settings import SETTINGS_KEY, ServeSettings

    config = load_config()
    settings = ServeSettings.load(config.settings_for(SETTINGS_KEY), host=args.host,
                                  port=args.port, legacy=args.legacy)
    app = create_app(settings=settings)
    server = uvicorn.Server(uvicorn_config(app, settings, host=settings.host,
                                          port=settings.port, log_level=args.log_level))
    _announce(server, settings)
    received = _end_streams_on_exit(server, app.state.sof)
    # uvicorn re-raises the SIGTERM it shut down on once it has stopped; with the default
    # handler that ends the process at once, before the service's close() and atexit
    # handlers. Raised as an exception instead, it unwinds through the finally below.
    previous = _catch_sigterm()
    try:
        server.run()
    except _Terminated:
        return 128 + signal.SIGTERM  # 143, as a process ended by SIGTERM reports it
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        app.state.sof.close(timeout=GRACEFUL_SHUTDOWN)  # Ctrl-C too (then exit 130)
    # uvicorn re-raises the SIGINT it stopped on, which ends the command with exit 130; a
    # process started with SIGINT ignored (a background job of a shell without job
    # control) ignores that too, and server.run() returns: still the exit of a Ctrl-C.
    return 128 + signal.SIGINT if signal.SIGINT in received else 0


class _Terminated(Exception):
    """SIGTERM, raised in the main thread once uvicorn has stopped."""


def _catch_sigterm() -> Any:
    """Make SIGTERM raise ``_Terminated``; the handler it replaced (None off the main
    thread, where signals cannot be handled)."""
    def terminated(signum: int, frame: Any) -> None:
        raise _Terminated

    try:
        return signal.signal(signal.SIGTERM, terminated)
    except ValueError:  # not the main thread
        return None


def _announce(server: Any, settings: Any) -> None:
    """Say where the server listens once it does (port 0 resolves to the real port)."""
    original = server.startup

    async def startup(sockets: Any = None) -> None:
        await original(sockets=sockets)
        for listener in getattr(server, "servers", []):
            for sock in listener.sockets:
                host, port = sock.getsockname()[:2]
                admin = "on" if settings.admin_token else "off (set SOF_ADMIN_TOKEN)"
                print(f"sof serve: listening on http://{host}:{port}/ (admin endpoints {admin})",
                      file=sys.stderr, flush=True)

    server.startup = startup


def _end_streams_on_exit(server: Any, service: Any) -> list[int]:
    """On Ctrl-C or SIGTERM, end open event streams at once: uvicorn waits for open
    responses, and a stream would otherwise last until the grace period cancels it.
    Returns the signals received (filled in as they come)."""
    original = server.handle_exit
    received: list[int] = []

    def handle_exit(sig: int, frame: Any) -> None:
        received.append(sig)
        service.closing.set()
        original(sig, frame)

    server.handle_exit = handle_exit
    return received
