"""Claims of docs/plugins/web.md that no other test checked: the settings table, the
declarations, entry details, the errors, the rules planner and the page's opening example.

Pages come from the real HTTP server in conftest.py (``server``) or, for the tides page of
the opening example, from a small real server below, both on 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sof_web import (
    AgentZeroWebBrowserTool,
    Fetcher,
    WebConfigError,
    WebFetchError,
    WebInputError,
    WebSettings,
)
from sof_web.settings import ENV_VARS

from sof_core import (
    UIF,
    ConfigError,
    CoordinatorEngine,
    PluginManager,
    SkillExecutionError,
    SkillSpec,
    SOFConfig,
)
from sof_core.testing import SofCLI

ALLOW = {"web_allowed_hosts": ["127.0.0.1"]}
TIDES = """<!doctype html>
<html><head><title>Tides explained</title></head>
<body><article>
<h1>Tides explained</h1>
<p>Tides are caused mainly by the gravitational pull of the Moon on the oceans of the Earth.</p>
<p>Spring tides, the largest ones, happen at new moon and at full moon, when the Sun and the
Moon line up.</p>
<p>Neap tides, the smallest ones, happen at the first and last quarter moons.</p>
</article></body></html>
"""


def fetch(url: str, **settings: Any) -> Any:
    return Fetcher(WebSettings.from_mapping({**ALLOW, **settings})).fetch(url)


# --- the settings table ----------------------------------------------------------------------


def test_the_settings_table_defaults() -> None:
    settings = WebSettings.from_mapping({})

    assert settings.web_allowed_hosts == ()
    assert (settings.connect_timeout, settings.read_timeout, settings.fetch_timeout) == (
        5, 10, 20)
    assert settings.max_redirects == 5
    assert settings.max_bytes == 2097152
    assert settings.max_urls == 5
    assert (settings.max_text_chars, settings.max_html_chars) == (100000, 200000)
    assert settings.user_agent == "SOF-AgentZeroWebBrowserTool/1.0"
    assert settings.ca_bundle is None  # certifi's


def test_the_settings_table_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ENV_VARS == {
        "SOF_WEB_ALLOWED_HOSTS": "web_allowed_hosts", "SOF_WEB_CONNECT_TIMEOUT": "connect_timeout",
        "SOF_WEB_READ_TIMEOUT": "read_timeout", "SOF_WEB_FETCH_TIMEOUT": "fetch_timeout",
        "SOF_WEB_MAX_REDIRECTS": "max_redirects", "SOF_WEB_MAX_BYTES": "max_bytes",
        "SOF_WEB_MAX_URLS": "max_urls", "SOF_WEB_MAX_TEXT_CHARS": "max_text_chars",
        "SOF_WEB_MAX_HTML_CHARS": "max_html_chars", "SOF_WEB_USER_AGENT": "user_agent",
        "SOF_WEB_CA_BUNDLE": "ca_bundle",
    }
    monkeypatch.setenv("SOF_WEB_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("SOF_WEB_USER_AGENT", "probe/2")
    monkeypatch.setenv("SOF_WEB_MAX_HTML_CHARS", "77")

    settings = AgentZeroWebBrowserTool().settings()

    assert (settings.connect_timeout, settings.user_agent, settings.max_html_chars) == (
        2, "probe/2", 77)


def test_timeouts_are_at_most_3600_seconds_and_sizes_at_least_1() -> None:
    assert WebSettings.from_mapping({"read_timeout": 3600}).read_timeout == 3600
    with pytest.raises(WebConfigError, match="up to 3600"):
        WebSettings.from_mapping({"fetch_timeout": 3600.5})
    assert WebSettings.from_mapping({"max_bytes": 1}).max_bytes == 1
    for size in ("max_bytes", "max_urls", "max_text_chars", "max_html_chars"):
        with pytest.raises(WebConfigError, match="at least 1") as caught:
            WebSettings.from_mapping({size: 0})
        assert caught.value.key == f"plugin_settings.web.{size}"


@pytest.mark.parametrize("value", ["soon", "-3"])  # mistyped, and out of range (it named no
def test_a_bad_value_says_which_environment_variable_it_came_from(  # source before)
    monkeypatch: pytest.MonkeyPatch, value: str,
) -> None:
    monkeypatch.setenv("SOF_WEB_READ_TIMEOUT", value)

    with pytest.raises(WebConfigError, match="environment variable SOF_WEB_READ_TIMEOUT") as caught:
        AgentZeroWebBrowserTool().settings()

    assert caught.value.key == "plugin_settings.web.read_timeout"


def test_the_user_agent_header_is_the_setting(server: Any) -> None:
    before = len(server.seen)

    assert fetch(server.url("/plain.txt?ua=default")).error is None
    assert fetch(server.url("/plain.txt?ua=set"), user_agent="probe/1").error is None

    agents = [seen.headers.get("User-Agent") for seen in server.seen[before:]]
    assert agents == ["SOF-AgentZeroWebBrowserTool/1.0", "probe/1"]


# --- declarations and errors -------------------------------------------------------------------


def test_the_tool_declares_the_documented_limits() -> None:
    spec = SkillSpec.from_skill_class(AgentZeroWebBrowserTool)

    assert spec.category == "tool"
    assert spec.permissions == frozenset({"network"})
    assert spec.max_execution_time == 60
    assert spec.max_output_bytes == 8 * 1024 * 1024


def test_the_error_classes() -> None:
    assert issubclass(WebFetchError, SkillExecutionError)
    assert issubclass(WebInputError, SkillExecutionError)
    assert issubclass(WebConfigError, ConfigError)
    with pytest.raises(WebInputError) as caught:
        AgentZeroWebBrowserTool(ALLOW).execute(
            UIF(input_query="q", intermediate_data={"urls": "http://a.test/"}))
    assert caught.value.key == "urls"


def test_web_fetch_error_failures_list_url_error_code_and_error() -> None:
    with pytest.raises(WebFetchError) as caught:
        AgentZeroWebBrowserTool().execute(UIF(input_query="Read http://10.0.0.5/x"))

    [failure] = caught.value.failures
    assert set(failure) == {"url", "error_code", "error"}
    assert (failure["url"], failure["error_code"]) == ("http://10.0.0.5/x", "blocked_address")


# --- entries -----------------------------------------------------------------------------------


def test_an_entry_with_nothing_received_has_no_final_url_or_status() -> None:
    entry = fetch("http://10.0.0.5/x", web_allowed_hosts=[]).as_entry()

    assert (entry["final_url"], entry["status"], entry["text"]) == (None, None, "")
    assert entry["error_code"] == "blocked_address"


def test_bytes_count_the_body_after_content_encoding(server: Any) -> None:
    plain = fetch(server.url("/page.html"))  # the same page, sent as it is

    result = fetch(server.url("/gzip"))

    assert result.error is None and result.text == plain.text
    assert plain.html is not None
    assert result.bytes == plain.bytes == len(plain.html.encode())


def test_json_has_no_title_and_no_html(server: Any) -> None:
    result = fetch(server.url("/data.json"))

    assert (result.content_type, result.title, result.html) == ("application/json", None, None)


def test_a_url_with_a_user_name_or_password_is_not_fetched(server: Any) -> None:
    before = len(server.seen)

    result = fetch(f"http://user:secret@127.0.0.1:{server.port}/page.html")

    assert result.error_code == "invalid_url"
    assert len(server.seen) == before


# --- the rules planner, the CLI and the opening example ---------------------------------------


def test_the_rules_planner_plans_the_tool_and_the_vetting_skill_for_a_url() -> None:
    pytest.importorskip("sof_vetting", reason="the vetting plugin (plugins/sof-vetting)")
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")
    config = SOFConfig(plugins_only=["web", "vetting", "response"])
    engine = CoordinatorEngine(PluginManager(config), config)

    planned = engine.planning.plan("Summarise https://example.org")

    assert planned.plan == ["AgentZeroWebBrowserTool", "ContentVettingSkill",
                            "ResponseGenerationSkill"]
    assert AgentZeroWebBrowserTool.triggers == (r"\bhttps?://",)


REFUSED = ("error: AgentZeroWebBrowserTool: WebFetchError: could not fetch URL: {url}: refused "
           "127.0.0.1: a loopback address (SSRF guard); to allow it, add '127.0.0.1' to "
           "SOF_WEB_ALLOWED_HOSTS or plugin_settings.web.web_allowed_hosts")


def refused_run(server: Any, tmp_path: Path) -> tuple[str, list[str]]:
    url = server.url("/page.html")
    result = SofCLI(tmp_path)("run", f"Summarise {url}", "--plan", "AgentZeroWebBrowserTool")
    assert result.returncode != 0
    return url, result.stderr.strip().splitlines()


def test_without_the_allow_list_the_run_fails_with_the_reason_on_one_line(
    server: Any, tmp_path: Path,
) -> None:
    url, lines = refused_run(server, tmp_path)

    assert len(lines) == 1
    assert lines[0].startswith(REFUSED.format(url=url))


def test_the_refusal_line_is_the_documented_one(server: Any, tmp_path: Path) -> None:
    url, lines = refused_run(server, tmp_path)

    (line,) = lines
    assert line.startswith(REFUSED.format(url=url) + " (plugin web, at ")
    assert "sof_web" in line and line.endswith("; --trace shows the traceback)")


class _Tides(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        data = TIDES.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def tides_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Tides)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/page.html"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_the_opening_example_summarises_the_allow_listed_page(
    tides_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("sof_vetting", reason="the vetting plugin (plugins/sof-vetting)")
    pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")
    monkeypatch.setenv("SOF_WEB_ALLOWED_HOSTS", "127.0.0.1")
    config = SOFConfig(plugins_only=["web", "vetting", "response"])
    engine = CoordinatorEngine(PluginManager(config), config)

    report = engine.run_query(f"Summarise {tides_url}", [
        "AgentZeroWebBrowserTool", "ContentVettingSkill", "ResponseGenerationSkill"])

    assert report.status == "success", report.errors
    assert report.uif.final_response == (
        "Tides are caused mainly by the gravitational pull of the Moon on the oceans of the "
        "Earth [1]. Spring tides, the largest ones, happen at new moon and at full moon, when "
        "the Sun and the Moon line up [1]. Neap tides, the smallest ones, happen at the first "
        "and last quarter moons [1].\n\n"
        "(extractive answer: no language model configured)\n\n"
        f"Sources:\n[1] Tides explained ({tides_url})")
