"""Running the app on uvicorn in a background thread (tests, benchmarks, embedding hosts).

``BackgroundServer`` starts uvicorn on 127.0.0.1 and a free port unless told otherwise,
waits until it accepts connections, and stops it on exit, so a caller never races the
server's startup or leaves it running.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

#: Seconds to wait for uvicorn to start or stop before giving up (a hang guard only).
START_TIMEOUT = 30.0
#: Seconds open connections (event streams never end by themselves) get to finish when
#: the server stops, before they are closed.
GRACEFUL_SHUTDOWN = 2


class BackgroundServer:
    """``with BackgroundServer(app) as server: httpx.get(server.url + "/healthz")``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning") -> None:
        import uvicorn

        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                                    log_level=log_level, lifespan="off",
                                                    timeout_graceful_shutdown=GRACEFUL_SHUTDOWN))
        self.thread = threading.Thread(target=self.server.run, name="sof-serve", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        for listener in self.server.servers:
            for sock in listener.sockets:
                self.port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        service = getattr(getattr(self.app, "state", None), "sof", None)
        closing = getattr(service, "closing", None)
        if closing is not None:  # end event streams now rather than at the grace period
            closing.set()
        self.server.should_exit = True
        self.thread.join(START_TIMEOUT)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
