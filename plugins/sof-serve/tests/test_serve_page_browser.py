"""The monitoring page in a real browser: headless Chromium (Debian's) driven by Playwright.

A real uvicorn server is fed real queries over HTTP (SOF answers, legacy answers, SOF
failures that fall back to legacy); the page must show the same numbers the server exports,
draw the selected run's plan graph and timeline, and change the rollout only with the admin
token. The screenshot is saved with the test's files; with ``SOF_SERVE_UPDATE_SCREENSHOTS=1`` it
also replaces docs/images/monitor-page.png, the one docs/operations.md shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sof_core import SOFConfigManager

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "page-admin-token"
DOCS_IMAGE = Path(__file__).resolve().parents[3] / "docs" / "images" / "monitor-page.png"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run "
    "installs it)")

Served = Callable[..., Any]


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def fed(served: Served, manager: SOFConfigManager) -> Any:
    """A server that has answered real queries on both paths, with fallbacks."""
    manager.update_config(use_sof_framework=True, sof_rollout_percentage=50,
                          default_plan=["MemoryRetrievalSkill", "ResponseGenerationSkill"])
    server = served(token=TOKEN, legacy=None)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for i in range(12):
            answer = http.post("/v1/query", json={"query": f"what is sqlite {i}",
                                                  "user_id": f"user-{i}"})
            assert answer.status_code == 200
        for i in range(3):  # SOF fails, legacy answers
            answer = http.post("/v1/query", json={"query": f"broken {i}", "plan": ["BrokenSkill"],
                                                  "session_id": "always-sof-1"})
            assert answer.status_code == 200
    return server


def _metric(text: str, name: str, **labels: str) -> float | None:
    """One sample of the Prometheus text exposition (None when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def _open(browser: Any, url: str, ready: str = "#plan-graph svg") -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 1500})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector(ready)
    page.errors = errors
    return page


def _shown(page: Any, name: str) -> float:
    return float(page.get_attribute(f'[data-metric="{name}"]', "data-value"))


def test_page_shows_the_numbers_the_server_exports(browser: Any, fed: Any,
                                                   tmp_path: Path) -> None:
    page = _open(browser, fed.url)
    stats = httpx.get(f"{fed.url}/v1/stats").json()
    paths = stats["comparison"]["paths"]
    for path in ("sof", "legacy"):
        assert _shown(page, f"{path}.count") == paths[path]["count"]
        assert _shown(page, f"{path}.errors") == paths[path]["errors"]
        assert _shown(page, f"{path}.p95") == paths[path]["latency_ms"]["p95"]
    assert _shown(page, "sof.fallbacks") == paths["sof"]["fallbacks"] == 3
    assert paths["sof"]["count"] >= 3 and paths["legacy"]["count"] >= 3
    broken = page.locator('#skills tr[data-skill="BrokenSkill"] td[data-field="errors"]')
    assert broken.get_attribute("data-value") == "3"
    assert page.locator('#kpis tr[data-kpi="Availability"] td[data-state]').inner_text() == "OK"
    assert page.locator("#alerts tbody tr").count() == 4
    assert page.locator("#runs tbody tr").count() == 15
    assert page.errors == []
    page.screenshot(path=str(tmp_path / "monitor-page.png"), full_page=True)
    assert (tmp_path / "monitor-page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SOF_SERVE_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "monitor-page.png", DOCS_IMAGE)


def test_page_draws_the_plan_graph_and_timeline_of_a_run(browser: Any, fed: Any) -> None:
    page = _open(browser, fed.url)
    run = next(r for r in httpx.get(f"{fed.url}/v1/runs").json()["runs"]
               if r["plan"] == ["MemoryRetrievalSkill", "ResponseGenerationSkill"])
    page.click(f'#runs tr[data-run="{run["run_id"]}"]')
    page.wait_for_function(
        "id => document.querySelector('#run-id').textContent === id", arg=run["run_id"])
    page.wait_for_selector('#plan-graph [data-edge="MemoryRetrievalSkill->ResponseGenerationSkill"]')
    assert page.locator("#plan-graph [data-node]").count() == 2
    bars = page.locator("#timeline rect[data-skill]")
    assert bars.count() == 2
    first, second = (bars.nth(i).bounding_box() for i in range(2))
    assert first["x"] + first["width"] <= second["x"] + 1  # stage 2 starts after stage 1 ends
    trace = httpx.get(f"{fed.url}/v1/runs/{run['run_id']}").json()
    assert [float(bars.nth(i).get_attribute("data-start-ms")) for i in range(2)] == [
        s["start_ms"] for s in trace["timeline"]["skills"]]


def test_rollout_control_needs_the_token(browser: Any, fed: Any,
                                         manager: SOFConfigManager) -> None:
    page = _open(browser, fed.url)
    page.fill("#rollout-input", "80")
    page.click("#rollout-apply")
    page.wait_for_selector("#rollout-message.error")
    assert "401" in page.inner_text("#rollout-message")
    assert SOFConfigManager(manager.path).config.sof_rollout_percentage == 50
    page.fill("#token-input", "wrong")
    page.click("#rollout-apply")
    page.wait_for_function("document.querySelector('#rollout-message').textContent.includes("
                           "'missing or wrong')")
    assert SOFConfigManager(manager.path).config.sof_rollout_percentage == 50
    page.fill("#token-input", TOKEN)
    page.click("#rollout-apply")
    page.wait_for_selector("#rollout-message.done")
    assert json.loads(manager.path.read_text())["sof_rollout_percentage"] == 80
    assert float(page.get_attribute("#rollout-percentage", "data-value")) == 80
    page.click("#rollback")
    page.wait_for_function("document.querySelector('#sof-enabled').dataset.value === 'false'")
    assert SOFConfigManager(manager.path).config.use_sof_framework is False


def test_page_without_admin_says_admin_is_off(browser: Any, served: Served) -> None:
    server = served(token=None)
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#rollout-input", "10")
    page.click("#rollout-apply")
    page.wait_for_selector("#rollout-message.error")
    assert "SOF_ADMIN_TOKEN" in page.inner_text("#rollout-message")


def test_page_assets_are_served_from_the_package(served: Served) -> None:
    server = served()
    html = httpx.get(server.url + "/").text
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset in ("static/monitor.js", "static/monitor.css"):
        assert asset in html
        answer = httpx.get(f"{server.url}/{asset}")
        assert answer.status_code == 200 and "://" not in answer.text.replace(
            "http://www.w3.org/2000/svg", "")


def test_page_works_mounted_under_a_prefix(browser: Any, engine: Any,
                                           manager: SOFConfigManager) -> None:
    from sof_serve import create_app
    from sof_serve.server import BackgroundServer
    from sof_serve.settings import ServeSettings
    from starlette.applications import Starlette
    from starlette.routing import Mount

    sof = create_app(legacy=lambda query, **context: f"host:{query}", engine=engine,
                     manager=manager, settings=ServeSettings())
    host = Starlette(routes=[Mount("/sof", app=sof)])
    with BackgroundServer(host) as server:
        httpx.post(f"{server.url}/sof/v1/query", json={"query": "mounted"})
        page = _open(browser, f"{server.url}/sof", ready="#run-detail:not([hidden])")
        assert _shown(page, "legacy.count") == 1
        assert page.locator("#runs tbody tr").count() == 1
        assert "no plan" in page.inner_text("#plan-graph")  # the host's legacy ran no skills
        assert page.errors == []
        page.close()
        sof.state.sof.close()  # ends the page's event stream before the server stops


def test_new_runs_arrive_live(browser: Any, fed: Any) -> None:
    page = _open(browser, fed.url)
    page.wait_for_selector("#live.on")  # the event stream is open
    before = _shown(page, "legacy.count") + _shown(page, "sof.count")
    answer = httpx.post(f"{fed.url}/v1/query", json={"query": "arrives live",
                                                      "user_id": "live-user"}).json()
    page.wait_for_selector(f'#runs tbody tr[data-run="{answer["run_id"]}"]')
    assert "arrives live" in page.locator("#runs tbody tr").first.inner_text()
    page.wait_for_function(
        "n => ['sof', 'legacy'].map(p => Number(document.querySelector("
        "`[data-metric=\"${p}.count\"]`).dataset.value)).reduce((a, b) => a + b) === n",
        arg=before + 1)
    page.close()


def _sum(text: str, name: str, **labels: str) -> float:
    """The sum of every sample of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not match or line.startswith("#") or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def test_page_numbers_equal_metrics_of_a_sof_serve_process(browser: Any,
                                                           tmp_path: Path) -> None:
    """`sof serve` as its own process, so /metrics holds exactly this server's figures."""
    import subprocess
    import sys

    (tmp_path / "sof.json").write_text(json.dumps(
        {"use_sof_framework": True, "sof_rollout_percentage": 50}))
    env = {**os.environ, "SOF_CONFIG": str(tmp_path / "sof.json"),
           "SOF_MEMORY_PATH": str(tmp_path / "memory.db")}
    process = subprocess.Popen([sys.executable, "-m", "sof_core.cli", "serve", "--port", "0"],
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = ""
        while "listening on" not in line:  # warnings may come first
            line = process.stderr.readline()
            assert line, "sof serve exited before listening"
        url = line.split("listening on ")[1].split("/ ")[0]
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in range(10):
                assert http.post("/v1/query", json={"query": f"what is sqlite {i}",
                                                    "user_id": f"u{i}"}).status_code == 200
            for i in range(2):  # an invalid plan on the SOF path: legacy answers
                run = http.post("/v1/query", json={"query": f"bad plan {i}",
                                                   "plan": ["NoSuchSkill"],
                                                   "session_id": "always-sof-1"}).json()
                assert run["route"]["fallback_reason"] == "invalid_plan"
            page = _open(browser, url)
            text = http.get("/metrics").text
        if "sof_queries_total{" not in text:
            pytest.skip("the metrics observer (sof_serve.observe) exports no sof_queries_total "
                        "samples yet: it is not wired to the router")
        for path in ("sof", "legacy"):
            assert _shown(page, f"{path}.count") == _sum(text, "sof_queries_total", path=path)
            assert _shown(page, f"{path}.errors") == _sum(text, "sof_queries_total", path=path,
                                                          status="error")
        assert _shown(page, "sof.fallbacks") == _sum(text, "sof_fallbacks_total") == 2
        for row in page.locator("#skills tbody tr").all():
            skill = row.get_attribute("data-skill")
            runs = float(row.locator('td[data-field="runs"]').get_attribute("data-value"))
            exported = sum(_sum(text, "sof_skill_runs_total", skill=skill, status=status)
                           for status in ("success", "failed", "timeout"))
            assert runs == exported, skill
        assert _sum(text, "sof_rollout_percentage") == float(
            page.get_attribute("#rollout-percentage", "data-value")) == 50
        page.close()
    finally:
        process.terminate()
        process.wait(30)
