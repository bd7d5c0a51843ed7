"""The finished-runs event stream, and `sof serve` as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

Served = Callable[..., Any]


def test_event_stream_sends_each_finished_run(served: Served) -> None:
    server = served()
    events: list[dict[str, Any]] = []
    subscribed = threading.Event()

    def read() -> None:
        with httpx.stream("GET", f"{server.url}/v1/runs/stream", params={"max_events": 2},
                          timeout=30) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            for line in answer.iter_lines():
                if line.startswith(":"):
                    subscribed.set()
                elif line.startswith("data: "):
                    events.append(json.loads(line[6:]))

    reader = threading.Thread(target=read)
    reader.start()
    assert subscribed.wait(10)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ids = [http.post("/v1/query", json={"query": f"q{i}"}).json()["run_id"]
               for i in range(2)]
    reader.join(10)
    assert not reader.is_alive()  # max_events=2: the stream ended after two runs
    assert [e["run_id"] for e in events] == ids
    assert events[0]["path"] == "legacy" and events[0]["ok"] is True


def test_stream_rejects_a_bad_max_events(served: Served) -> None:
    server = served()
    answer = httpx.get(f"{server.url}/v1/runs/stream", params={"max_events": "0"})
    assert answer.status_code == 422


def _sof(tmp_path: Path, *args: str, preexec: Any = None, **env: str
         ) -> subprocess.Popen[str]:
    environ = {**os.environ, "SOF_CONFIG": str(tmp_path / "sof.json"), **env}
    return subprocess.Popen([sys.executable, "-m", "sof_core.cli", *args], env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_sof_serve_binds_loopback_and_answers(tmp_path: Path) -> None:
    process = _sof(tmp_path, "serve", "--port", "0", SOF_ADMIN_TOKEN="tok")
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while "listening on" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line or process.poll() is None, "sof serve exited"
        assert "listening on http://127.0.0.1:" in line and "admin endpoints on" in line
        url = line.split("listening on ")[1].split("/ ")[0]
        answer = httpx.post(f"{url}/v1/query", json={"query": "what is sof"}, timeout=60)
        assert answer.status_code == 200
        assert answer.json()["schema"] == "sof.run/1"
        rollout = httpx.put(f"{url}/v1/admin/rollout", json={"percentage": 30},
                            headers={"Authorization": "Bearer tok"}, timeout=30)
        assert rollout.status_code == 200
        assert json.loads((tmp_path / "sof.json").read_text())["sof_rollout_percentage"] == 30
    finally:
        process.terminate()
        process.wait(30)


def test_sof_serve_bad_setting_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "sof.json").write_text(json.dumps(
        {"plugin_settings": {"serve": {"max_concurrency": 0}}}))
    process = _sof(tmp_path, "serve", "--port", "0")
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert err.strip().count("\n") == 0
    assert "plugin_settings.serve.max_concurrency" in err


@pytest.mark.parametrize("started_ignoring_sigint", [False, True])
def test_ctrl_c_with_an_open_event_stream_exits_cleanly(
        tmp_path: Path, started_ignoring_sigint: bool) -> None:
    # Started with SIGINT ignored (a background job of a shell without job control, as a
    # test run may be), uvicorn's re-raised SIGINT was ignored too and the exit was 0.
    import signal

    process = _sof(tmp_path, "serve", "--port", "0",
                   preexec=_ignore_sigint if started_ignoring_sigint else None)
    try:
        assert process.stderr is not None
        line = ""
        while "listening on" not in line:  # warnings may come first
            line = process.stderr.readline()
            assert line, "sof serve exited before listening"
        url = line.split("listening on ")[1].split("/ ")[0]
        with httpx.stream("GET", f"{url}/v1/runs/stream", timeout=30) as stream:
            lines = stream.iter_lines()
            next(lines)  # the stream is open
            process.send_signal(signal.SIGINT)
            rest = list(lines)  # the server ends it rather than hanging
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130  # what `sof` exits with after any Ctrl-C
    assert "Traceback" not in err and "CancelledError" not in err
    assert all(not line.startswith("data:") for line in rest)


def _listening(process: subprocess.Popen[str]) -> str:
    """Read the server's stderr up to its "listening on" line, and return that line."""
    assert process.stderr is not None
    line = ""
    while "listening on" not in line:
        line = process.stderr.readline()
        assert line, "sof serve exited before listening"
    return line


def test_sigterm_closes_the_service_and_runs_atexit_handlers(tmp_path: Path) -> None:
    # uvicorn re-raised SIGTERM with the default handler: the process died before
    # SOFService.close() and the atexit handlers ran.
    import signal

    script = (
        "import atexit, sys\n"
        "import sof_serve.service as service\n"
        "original = service.SOFService.close\n"
        "def close(self, *args, **kwargs):\n"
        "    print('service closed', flush=True)\n"
        "    original(self, *args, **kwargs)\n"
        "service.SOFService.close = close\n"
        "atexit.register(lambda: print('atexit ran', flush=True))\n"
        "from sof_core.cli.main import main\n"
        "sys.exit(main(['serve', '--port', '0']))\n"
    )
    environ = {**os.environ, "SOF_CONFIG": str(tmp_path / "sof.json")}
    process = subprocess.Popen([sys.executable, "-c", script], env=environ,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _listening(process)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert "service closed" in out and "atexit ran" in out, (out, err)
    assert process.returncode == 143
    assert "Traceback" not in err


def test_a_request_cut_by_the_stop_gets_the_apis_json_error(tmp_path: Path) -> None:
    # after the 2 s grace it got uvicorn's plain-text 500, with "Exception in ASGI
    # application" and a CancelledError traceback in the log; and the exit message blamed
    # "a skill or plugin" for sof serve's own request thread
    import re
    import signal

    (tmp_path / "slowlegacy.py").write_text(
        "import time\n"
        "def answer(query, **context):\n"
        "    time.sleep(20)\n"
        "    return 'late'\n")
    (tmp_path / "sof.json").write_text('{"use_sof_framework": false}')
    process = _sof(tmp_path, "serve", "--port", "0", "--legacy", "slowlegacy:answer",
                   PYTHONPATH=str(tmp_path))
    got: dict[str, Any] = {}
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+", _listening(process))
        assert url is not None

        def ask() -> None:
            got["answer"] = httpx.post(f"{url.group(0)}/v1/query", json={"query": "hi"},
                                       timeout=30)

        asking = threading.Thread(target=ask)
        asking.start()
        time.sleep(1.0)  # the request is in the legacy call now
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        asking.join(30)
    finally:
        if process.poll() is None:
            process.kill()
    answer = got["answer"]
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == "shutting_down"
    assert "Exception in ASGI application" not in err and "Traceback" not in err
    if "exiting without waiting" in err:
        assert "answering a request, held by a skill or legacy pipeline call" in err
        assert "started by a skill or plugin" not in err
    assert process.returncode == 143
