"""Calls for test_sam_security.py. They live in an importable module, so the sandbox process
a call runs in imports its function by name, as it does a plugin's."""

from __future__ import annotations

import socket
import time


def sleep_then(seconds: float, value: str = "done") -> str:
    time.sleep(seconds)
    return value


def fail() -> str:
    raise ValueError("the tool broke")


def greet(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
        return conn.recv(64).decode()


def write(path: str) -> bool:
    with open(path, "w") as handle:
        handle.write("escaped")
    return True
