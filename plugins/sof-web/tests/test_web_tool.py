"""AgentZeroWebBrowserTool as a skill: what it declares, what it writes to
``external_content``, how it is configured, and how it fails; in-process and through the
engine with the installed ``sof-web`` distribution (the tool then runs in an isolation
worker, so its settings must travel with it).
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from sof_web import AgentZeroWebBrowserTool, WebConfigError, WebFetchError, WebInputError

from sof_core import UIF, CoordinatorEngine, PluginManager, SOFConfig
from sof_core.testing import import_footprint

ALLOW = {"web_allowed_hosts": ["127.0.0.1"]}


def run(query: str, tool: AgentZeroWebBrowserTool | None = None, **data: Any) -> UIF:
    uif = UIF(input_query=query)
    uif.intermediate_data.update(data)
    return (tool or AgentZeroWebBrowserTool(ALLOW)).execute(uif)


def engine(**web: Any) -> CoordinatorEngine:
    cfg = SOFConfig(plugins_only=["web"], plugin_settings={"web": web} if web else {})
    return CoordinatorEngine(PluginManager(cfg), cfg)


# --- declarations --------------------------------------------------------------------------------


def test_the_tool_declares_untrusted_network_output() -> None:
    tool = AgentZeroWebBrowserTool
    assert tool.requires_external_access is True
    assert tool.permissions == ("network",)
    assert tool.output_keys == [("external_content", list)]
    assert tool.required_inputs == ["input_query"]
    assert tool.optional_inputs == [("urls", list)]


def test_the_installed_distribution_registers_it_as_a_tool() -> None:
    entry = engine().registry.skill("AgentZeroWebBrowserTool")

    assert entry is not None
    assert entry.kind == "tools"  # registered through sof_register_tools
    assert entry.distribution == "sof-web"
    assert entry.spec.requires_external_access is True


# --- what it writes ------------------------------------------------------------------------------


def test_urls_in_the_query_and_the_urls_input_are_fetched_in_order(server: Any) -> None:
    page, plain = server.url("/page.html"), server.url("/plain.txt")

    uif = run(f"Summarise {page}, then {page}.", urls=[plain, page])

    content = uif.intermediate_data["external_content"]
    assert [c["url"] for c in content] == [page, plain]  # duplicates dropped
    assert content[0]["title"] == "SOF release notes"
    assert content[1]["text"].startswith("Plain words.")
    assert all(c["error"] is None for c in content)
    assert "fetched 2 of 2 URLs" in " ".join(str(e) for e in uif.log_trace)


@pytest.mark.parametrize("query, urls", [
    ("see http://a.test/x).", ["http://a.test/x"]),
    ("(http://a.test/wiki/Foo_(bar)) and https://b.test/?q=1, then", [
        "http://a.test/wiki/Foo_(bar)", "https://b.test/?q=1"]),
    ("ftp://a.test/ and file:///etc/passwd and HTTP://C.test/", ["HTTP://C.test/"]),
])
def test_urls_are_found_as_a_reader_sees_them(query: str, urls: list[str]) -> None:
    from sof_web.urls import find_urls

    assert find_urls(query) == urls


def test_each_fetch_ends_before_the_steps_deadline() -> None:
    tool = AgentZeroWebBrowserTool()

    assert tool.deadline(100.0) == pytest.approx(100.0 + 60.0 - 0.5)


def test_a_policy_time_limit_ends_the_fetches_before_the_worker_is_killed(server: Any) -> None:
    # The tool policy may give the tool less time than it declares; in its isolation worker
    # that is when it is killed, so a dripping server must fail the fetch, with a reason,
    # before then (not leave only "killed at the deadline" in the report).
    cfg = SOFConfig(plugins_only=["web"], plugin_settings={"web": ALLOW},
                    tool_policy={"limits": {"AgentZeroWebBrowserTool": {
                        "max_execution_time": 4.0}}})
    engine = CoordinatorEngine(PluginManager(cfg), cfg)
    assert engine.registry.skill("AgentZeroWebBrowserTool").instance.deadline(0.0) == (
        pytest.approx(3.6))

    warm = engine.run_query(f"Read {server.url('/plain.txt')}", ["AgentZeroWebBrowserTool"])
    assert warm.status == "success", warm.errors  # a worker is running: no start to pay for

    report = engine.run_query(f"Read {server.url('/drip')}", ["AgentZeroWebBrowserTool"])

    assert report.status != "success"
    assert report.results[0].error_type == "WebFetchError", report.errors
    assert "did not finish in its time" in " ".join(report.errors)


def test_no_url_writes_an_empty_list() -> None:
    uif = run("What is the capital of France?")

    assert uif.intermediate_data["external_content"] == []


def test_some_failures_are_entries_with_a_warning(server: Any) -> None:
    ok, missing = server.url("/page.html"), server.url("/status/404")

    uif = run(f"Compare {ok} and {missing}")

    content = uif.intermediate_data["external_content"]
    assert content[0]["error"] is None
    assert content[1]["error_code"] == "http_status" and content[1]["text"] == ""
    assert any(missing in w and "HTTP 404" in w for w in uif.warnings)


def test_when_every_url_fails_the_tool_raises_saying_why(server: Any) -> None:
    with pytest.raises(WebFetchError) as caught:
        run(f"Read http://10.0.0.5/ and {server.url('/image.png')}")

    error = caught.value
    assert error.skill == "AgentZeroWebBrowserTool"
    assert [f["error_code"] for f in error.failures] == ["blocked_address", "content_type"]
    assert "could not fetch all 2 URLs" in str(error)
    assert pickle.loads(pickle.dumps(error)).failures == error.failures  # crosses processes


def test_more_urls_than_max_urls_are_skipped_with_a_warning(server: Any) -> None:
    urls = [server.url(f"/plain.txt?n={n}") for n in range(4)]
    tool = AgentZeroWebBrowserTool({**ALLOW, "max_urls": 2})

    uif = run(" ".join(urls), tool)

    assert len(uif.intermediate_data["external_content"]) == 2
    assert any("4 URLs given; fetched the first 2 (max_urls)" in w for w in uif.warnings)


@pytest.mark.parametrize("value", ["http://a.test/", [1, 2], {"url": "x"}])
def test_a_malformed_urls_input_is_a_typed_error(value: Any) -> None:
    with pytest.raises(WebInputError, match="input 'urls': must be a list of URL strings"):
        run("q", urls=value)


def test_the_tools_resolver_hook_sees_every_hop(server: Any, scripted: Any) -> None:
    resolver = scripted({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    tool = AgentZeroWebBrowserTool(ALLOW, resolver=resolver)
    url = f"http://rebind.test:{server.port}/redirect?to=/page.html"

    with pytest.raises(WebFetchError, match=r"rebind.test \(resolves to 10.0.0.1\)"):
        run(f"Summarise {url}", tool)

    assert resolver.asked == ["rebind.test", "rebind.test"]


# --- settings ------------------------------------------------------------------------------------


def test_settings_come_from_config_then_environment_then_arguments(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = SOFConfig(plugin_settings={"web": {"max_urls": 3, "read_timeout": 4}})
    tool = AgentZeroWebBrowserTool(config=cfg)
    assert tool.settings().max_urls == 3

    monkeypatch.setenv("SOF_WEB_MAX_URLS", "4")
    assert tool.settings().max_urls == 4
    assert tool.settings().read_timeout == 4.0

    explicit = AgentZeroWebBrowserTool({"max_urls": 5}, config=cfg)
    assert explicit.settings().max_urls == 5


@pytest.mark.parametrize("settings, env, key, message", [
    ({"web_allow_hosts": ["x"]}, {}, "plugin_settings.web.web_allow_hosts",
     "unknown web setting 'web_allow_hosts'"),
    ({"max_bytes": "lots"}, {}, "plugin_settings.web.max_bytes", "must be an integer"),
    ({}, {"SOF_WEB_READ_TIMEOUT": "-1"}, "plugin_settings.web.read_timeout",
     "positive number of seconds"),
    ({}, {"SOF_WEB_CA_BUNDLE": "/no/such.pem"}, "plugin_settings.web.ca_bundle",
     "is not a file"),
])
def test_bad_settings_are_config_errors_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any], env: dict[str, str], key: str,
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tool = AgentZeroWebBrowserTool(config=SOFConfig(plugin_settings={"web": settings}))

    with pytest.raises(WebConfigError, match=message) as caught:
        tool.settings()

    assert caught.value.key == key


def test_the_host_environment_travels_with_the_pickled_tool(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOF_WEB_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("HOME_UNRELATED", "x")

    copy = pickle.loads(pickle.dumps(AgentZeroWebBrowserTool()))
    monkeypatch.delenv("SOF_WEB_ALLOWED_HOSTS")

    assert copy.settings().web_allowed_hosts == ("127.0.0.1",)
    assert "HOME_UNRELATED" not in (copy._environ or {})


def test_a_shorter_total_timeout_ends_the_fetches_before_the_run_ends(server: Any) -> None:
    # In its isolation worker the tool reads the run's total_timeout too (current_deadline),
    # so a dripping server fails the fetch with a reason before the run is cut short.
    cfg = SOFConfig(plugins_only=["web"], plugin_settings={"web": ALLOW}, total_timeout=3.0)
    engine = CoordinatorEngine(PluginManager(cfg), cfg)
    warm = engine.run_query(f"Read {server.url('/plain.txt')}", ["AgentZeroWebBrowserTool"])
    assert warm.status == "success", warm.errors  # a worker is running: no start to pay for

    report = engine.run_query(f"Read {server.url('/drip')}", ["AgentZeroWebBrowserTool"])

    assert report.results[0].error_type == "WebFetchError", report.errors
    assert "did not finish in its time" in " ".join(report.errors)
    assert not any("total_timeout" in error for error in report.errors)


# --- through the engine (isolation worker) -------------------------------------------------------


def test_the_config_allow_list_reaches_the_isolated_tool(server: Any) -> None:
    url = server.url("/page.html")

    report = engine(web_allowed_hosts=["127.0.0.1"]).run_query(
        f"Summarise {url}", ["AgentZeroWebBrowserTool"])

    assert report.status == "success", report.errors
    entry = report.uif.intermediate_data["external_content"][0]
    assert entry["title"] == "SOF release notes" and entry["final_url"] == url


@pytest.mark.parametrize("hosts", [["127.0.0.1"], "127.0.0.0/8"])
def test_the_top_level_config_key_web_allowed_hosts_reaches_the_isolated_tool(
    server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, hosts: Any
) -> None:
    """Issue 11 names the config key `web_allowed_hosts`: written at the top of the config
    file (not under plugin_settings.web), it is the allow-list all the same."""
    import json

    from sof_core.config import SOFConfigManager

    path = tmp_path / "sof.json"
    path.write_text(json.dumps({"plugins_only": ["web"], "web_allowed_hosts": hosts}))
    cfg = SOFConfigManager(path).load_config()
    engine = CoordinatorEngine(PluginManager(cfg), cfg)

    report = engine.run_query(f"Summarise {server.url('/page.html')}",
                              ["AgentZeroWebBrowserTool"])

    assert report.status == "success", report.errors


def test_the_plugins_own_allow_list_wins_over_the_top_level_key(server: Any) -> None:
    cfg = SOFConfig(plugins_only=["web"], web_allowed_hosts=["127.0.0.1"],
                    plugin_settings={"web": {"web_allowed_hosts": ["192.0.2.1"]}})
    engine = CoordinatorEngine(PluginManager(cfg), cfg)

    report = engine.run_query(f"Summarise {server.url('/page.html')}",
                              ["AgentZeroWebBrowserTool"])

    assert report.status != "success"
    assert "a loopback address (SSRF guard)" in " ".join(report.errors)


def test_the_environment_allow_list_reaches_the_isolated_tool(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOF_WEB_ALLOWED_HOSTS", "127.0.0.0/8")

    report = engine().run_query(f"Summarise {server.url('/plain.txt')}",
                                ["AgentZeroWebBrowserTool"])

    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["external_content"][0]["text"].startswith("Plain")


def test_without_the_allow_list_the_report_says_which_guard_refused(server: Any) -> None:
    before = len(server.seen)

    report = engine().run_query(f"Summarise {server.url('/page.html')}",
                                ["AgentZeroWebBrowserTool"])

    assert report.status != "success"
    error = " ".join(report.errors)
    assert "AgentZeroWebBrowserTool" in error and "WebFetchError" in error
    assert "127.0.0.1: a loopback address (SSRF guard)" in error
    assert "SOF_WEB_ALLOWED_HOSTS" in error
    assert len(server.seen) == before


def test_loading_and_configuring_the_tool_leaves_settings_urls_and_fetcher_for_its_first_use(
) -> None:
    """Every ``sof`` process loads the plugin, registers the tool and configures it; few
    fetch. None of that imports the settings (with their address checks), the URL finder or
    the fetcher (httpx), or compiles a pattern; the first use does, and works."""
    load, first_use = import_footprint(
        """
        from sof_core import SOFConfig
        from sof_web import plugin
        [tool_class] = plugin.sof_register_tools()
        tool = tool_class()
        tool.configure(SOFConfig(plugin_settings={"web": {"max_urls": 2}}))
        """,
        """
        import pickle
        assert tool.can_handle_query("Summarise https://example.com/a, please")
        assert tool.settings().max_urls == 2
        copy = pickle.loads(pickle.dumps(tool))
        assert copy.settings().max_urls == 2
        from sof_web import AllowList, WebSettings, why_blocked
        assert isinstance(tool.settings(), WebSettings)
        assert isinstance(tool.settings().allow_list, AllowList) and callable(why_blocked)
        import sof_web
        assert {"AllowList", "Fetcher", "WebSettings"} <= set(dir(sof_web))
        """,
    )
    assert not load.compiled_in("sof_web")
    assert not load.loaded(["sof_web.settings", "sof_web.addresses", "sof_web.urls",
                            "sof_web.fetch", "httpx"])
    assert first_use.loaded(["sof_web.settings", "sof_web.urls"]) == [
        "sof_web.settings", "sof_web.urls"]
