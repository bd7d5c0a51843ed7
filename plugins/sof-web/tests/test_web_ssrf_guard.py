"""The SSRF guard: internal destinations are refused in every spelling, after every
redirect, and the connection goes to the address that was checked (DNS cannot change it).

The server is real (conftest.py, 127.0.0.1 and ::1); DNS for made-up names is a resolver the
test scripts (``ScriptedResolver``), passed through the fetcher's resolver hook, so answers
can change between questions as a rebinding attacker's do.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import httpcore
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sof_web import AllowList, Fetcher, WebConfigError, WebSettings, why_blocked
from sof_web.addresses import literal_address
from sof_web.transport import PinnedBackend

SETTING = "SOF_WEB_ALLOWED_HOSTS"


def fetcher(allowed: list[str] | None = None, resolver: Any = None, **more: Any) -> Fetcher:
    settings = WebSettings.from_mapping({"web_allowed_hosts": allowed or [], **more})
    return Fetcher(settings, resolver=resolver)


def requests_to(server: Any, path: str) -> int:
    return sum(1 for seen in server.seen if seen.path == path)


# --- classification ------------------------------------------------------------------------------


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.0.10", "private"),
    ("fc00::1", "private"), ("fd12:3456::1", "private"),
    ("169.254.10.1", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"), ("239.1.2.3", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("100.64.0.1", "carrier-grade NAT"), ("198.18.0.1", "private|not globally"),
    ("192.0.2.1", "private|not globally"), ("fec0::1", "site-local"),
    ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"), ("192.0.0.192", "cloud metadata"),
    ("::ffff:127.0.0.1", "IPv4-mapped.*loopback"), ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::a00:1", "NAT64.*private"), ("2002:7f00:1::1", "6to4.*loopback"),
    ("::127.0.0.1", "IPv4-compatible"),
])
def test_internal_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    why = why_blocked(ipaddress.ip_address(address))

    assert why is not None
    assert re.search(reason, why), why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111",
                                     "::ffff:93.184.216.34"])
def test_public_addresses_pass(address: str) -> None:
    assert why_blocked(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("spelling", [
    "2130706433", "0x7f.1", "0x7f000001", "017700000001", "0177.1", "127.1", "0x7f.0.0.1",
    "127.0.0.1.", "0177.0.0.01", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]",
])
def test_every_ipv4_spelling_reads_as_the_address_it_is(spelling: str) -> None:
    address = literal_address(spelling)

    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped
    assert address == ipaddress.IPv4Address("127.0.0.1")


# --- refused before any connection ---------------------------------------------------------------


@pytest.mark.parametrize("host, why", [
    ("127.0.0.1", "a loopback address"),
    ("2130706433", "2130706433 (= 127.0.0.1)"),
    ("0x7f.1", "0x7f.1 (= 127.0.0.1)"),
    ("017700000001", "(= 127.0.0.1)"),
    ("0177.1", "(= 127.0.0.1)"),
    ("127.1", "(= 127.0.0.1)"),
    ("0177.0.0.1", "127.0.0.1: a loopback address"),  # httpx refuses it; a browser reads it
    ("0", "(= 0.0.0.0): the unspecified address"),
    ("[::1]", "::1: a loopback address"),
    ("[::ffff:127.0.0.1]", "IPv4-mapped"),
    ("[::ffff:7f00:1]", "IPv4-mapped"),
    ("10.0.0.7", "a private address"),
    ("169.254.169.254", "cloud metadata"),
    ("[fd00:ec2::254]", "cloud metadata"),
    ("224.0.0.251", "multicast"),
    ("[fe80::1]", "link-local"),
    ("240.1.1.1", "reserved"),
])
def test_internal_literal_hosts_are_refused_without_connecting(
    server: Any, scripted: Any, host: str, why: str
) -> None:
    resolver = scripted({})
    before = len(server.seen)

    result = fetcher(resolver=resolver).fetch(f"http://{host}:{server.port}/page.html")

    assert result.error_code == "blocked_address", result.error
    assert why in (result.error or "")
    assert "SSRF guard" in (result.error or "") and SETTING in (result.error or "")
    assert result.text == "" and result.status is None and result.connected == []
    assert resolver.asked == []  # a literal is never looked up
    assert len(server.seen) == before


def test_a_name_that_resolves_inside_is_refused(server: Any, scripted: Any) -> None:
    resolver = scripted({"intranet.test": [["10.1.2.3"]], "mixed.test": [
        ["93.184.216.34", "127.0.0.1"]]})
    f = fetcher(resolver=resolver)

    inside = f.fetch(f"http://intranet.test:{server.port}/page.html")
    mixed = f.fetch(f"http://mixed.test:{server.port}/page.html")

    assert inside.error_code == "blocked_address"
    assert "intranet.test (resolves to 10.1.2.3): a private address" in (inside.error or "")
    assert "'intranet.test'" in (inside.error or "")  # what to add to the allow-list
    # one bad answer among good ones is enough: the client could be sent to any of them
    assert mixed.error_code == "blocked_address"
    assert "resolves to 127.0.0.1" in (mixed.error or "")
    assert mixed.connected == []


def test_metadata_names_are_refused_before_they_are_resolved(scripted: Any) -> None:
    resolver = scripted({"metadata.google.internal": [["93.184.216.34"]]})

    result = fetcher(resolver=resolver).fetch("http://metadata.google.internal/computeMetadata/")

    assert result.error_code == "blocked_address"
    assert "cloud metadata service" in (result.error or "")
    assert resolver.asked == []


def test_metadata_addresses_need_an_entry_naming_them_exactly(scripted: Any) -> None:
    broad = fetcher(["169.254.0.0/16"]).fetch("http://169.254.169.254/latest/meta-data/")

    assert broad.error_code == "blocked_address"
    assert "only an entry naming exactly 169.254.169.254" in (broad.error or "")


# --- the allow-list ------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "2130706433", "127.0.0.1/32"])
@pytest.mark.parametrize("spelling", ["2130706433", "0177.0.0.1"])
def test_an_allow_listed_address_or_network_is_fetched(server: Any, entry: str,
                                                       spelling: str) -> None:
    result = fetcher([entry]).fetch(server.url("/plain.txt", host=spelling))

    assert result.error is None, result.error
    assert result.text.startswith("Plain words.")
    assert result.connected == ["127.0.0.1"]


def test_an_allow_listed_name_is_trusted_wherever_it_resolves(server: Any, scripted: Any) -> None:
    resolver = scripted({"docs.internal.test": [["127.0.0.1"]]})

    exact = fetcher(["docs.internal.test"], resolver).fetch(
        f"http://docs.internal.test:{server.port}/plain.txt")
    wildcard = fetcher(["*.internal.test"], resolver).fetch(
        f"http://docs.internal.test:{server.port}/plain.txt")
    other = fetcher(["other.test"], resolver).fetch(
        f"http://docs.internal.test:{server.port}/plain.txt")

    assert exact.error is None and wildcard.error is None, (exact.error, wildcard.error)
    assert other.error_code == "blocked_address"


@pytest.mark.parametrize("value, message", [
    ("http://127.0.0.1", "is not a host or CIDR"),
    ("10.0.0.0/99", "is not a CIDR network"),
    ("example.com:8080", "ports are not supported"),
    ("1.2.3.4.5", "more than four numeric parts"),
    ("a.*.example.com", "inner wildcards are not supported"),
])
def test_bad_allow_list_entries_are_config_errors_naming_the_setting(
    value: str, message: str
) -> None:
    with pytest.raises(WebConfigError, match=message) as caught:
        WebSettings.resolve({}, {SETTING: value})

    assert caught.value.key == "plugin_settings.web.web_allowed_hosts"
    assert f"environment variable {SETTING}" in str(caught.value)


def test_the_environment_wins_over_the_config_and_takes_commas() -> None:
    settings = WebSettings.resolve({"web_allowed_hosts": ["a.test"]},
                                   {SETTING: "127.0.0.1, *.example.com,10.0.0.0/8"})

    assert settings.web_allowed_hosts == ("127.0.0.1", "*.example.com", "10.0.0.0/8")
    assert settings.allow_list.host_entry("www.example.com") == "*.example.com"
    assert settings.allow_list.network_entry(ipaddress.ip_address("10.9.9.9")) is not None
    assert settings.allow_list.host_entry("a.test") is None
    assert not AllowList.parse([])


# --- redirects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target, why", [
    ("http://127.0.0.1:{port}/page.html", "a loopback address"),
    ("http://2130706433:{port}/page.html", "(= 127.0.0.1)"),
    ("http://0x7f.1:{port}/page.html", "(= 127.0.0.1)"),
    ("http://[::1]:{port}/page.html", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/page.html", "IPv4-mapped"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://10.0.0.1/admin", "a private address"),
    ("http://evil.test:{port}/page.html", "evil.test (resolves to 127.0.0.1)"),
    ("http://metadata.google.internal/", "cloud metadata service"),
])
@pytest.mark.parametrize("status", ["302", "307"])
def test_redirects_to_internal_destinations_are_refused(
    server: Any, scripted: Any, target: str, why: str, status: str
) -> None:
    # site.test is allow-listed by name (and resolves to the local server); its redirect
    # targets are not, and must each be checked again.
    resolver = scripted({"site.test": [["127.0.0.1"]], "evil.test": [["127.0.0.1"]]})
    location = target.format(port=server.port)
    start = f"http://site.test:{server.port}/redirect?to={location}&status={status}"
    pages_before = requests_to(server, "/page.html")

    result = fetcher(["site.test"], resolver).fetch(start)

    assert result.error_code == "blocked_address", result.error
    assert why in (result.error or "")
    assert result.redirects == [start]
    assert result.connected == ["127.0.0.1"]  # the first hop only
    assert requests_to(server, "/page.html") == pages_before


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:70/",
                                      "http://user:pw@site.test/"])
def test_redirects_to_other_schemes_or_credentials_are_refused(
    server: Any, scripted: Any, location: str
) -> None:
    resolver = scripted({"site.test": [["127.0.0.1"]]})

    result = fetcher(["site.test"], resolver).fetch(
        f"http://site.test:{server.port}/redirect?to={location}")

    assert result.error_code == "invalid_url", result.error


def test_the_redirect_limit_is_enforced(server: Any) -> None:
    allowed = ["127.0.0.1"]

    within = fetcher(allowed, max_redirects=3).fetch(server.url("/chain/2"))
    over = fetcher(allowed, max_redirects=2).fetch(server.url("/chain/2"))
    loop = fetcher(allowed).fetch(server.url("/loop"))

    assert within.error is None and len(within.redirects) == 3
    assert over.error_code == "too_many_redirects"
    assert "more than 2 redirects (max_redirects)" in (over.error or "")
    assert loop.error_code == "too_many_redirects" and len(loop.redirects) == 6


# --- DNS answers that change ---------------------------------------------------------------------


def test_the_connection_goes_to_the_checked_address_and_dns_is_asked_once(
    server: Any, scripted: Any
) -> None:
    # First answer: the allow-listed address. Any later question gets an internal one; a
    # client that looked the name up again before connecting would be sent there (or, for a
    # made-up name, fail to resolve it at all).
    resolver = scripted({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})

    result = fetcher(["127.0.0.1"], resolver).fetch(
        f"http://rebind.test:{server.port}/echo-host")

    assert result.error is None, result.error
    assert resolver.asked == ["rebind.test"]
    assert result.connected == ["127.0.0.1"]
    assert result.text == f"host=rebind.test:{server.port}"  # the real name in Host


def test_a_rebinding_answer_after_a_redirect_is_refused(server: Any, scripted: Any) -> None:
    resolver = scripted({"rebind.test": [["127.0.0.1"], ["169.254.169.254"]]})
    pages_before = requests_to(server, "/page.html")

    result = fetcher(["127.0.0.1"], resolver).fetch(
        f"http://rebind.test:{server.port}/redirect?to=/page.html")

    assert result.error_code == "blocked_address"
    assert "rebind.test (resolves to 169.254.169.254): a cloud metadata address" in (
        result.error or "")
    assert resolver.asked == ["rebind.test", "rebind.test"]
    assert requests_to(server, "/page.html") == pages_before


def test_a_name_that_first_resolves_inside_is_never_connected(server: Any, scripted: Any) -> None:
    resolver = scripted({"flip.test": [["10.0.0.1"], ["127.0.0.1"]]})
    before = len(server.seen)

    result = fetcher(["127.0.0.1"], resolver).fetch(f"http://flip.test:{server.port}/page.html")

    assert result.error_code == "blocked_address"
    assert len(server.seen) == before


def test_resolver_failures_and_junk_answers_are_dns_errors(scripted: Any) -> None:
    class Junk:
        def __call__(self, host: str, port: int, timeout: float) -> list[str]:
            return ["not-an-address"]

    missing = fetcher(resolver=scripted({})).fetch("http://nowhere.test/")
    junk = fetcher(resolver=Junk()).fetch("http://junk.test/")

    assert missing.error_code == "dns" and "nowhere.test" in (missing.error or "")
    assert junk.error_code == "dns" and "no address" in (junk.error or "")


def test_the_network_layer_refuses_hosts_the_guard_did_not_pin() -> None:
    backend = PinnedBackend()
    backend.pin("a.test", [ipaddress.ip_address("127.0.0.1")])

    with pytest.raises(httpcore.ConnectError, match="not checked by the guard"):
        backend.connect_tcp("b.test", 80, timeout=1)


# --- IPv6 ----------------------------------------------------------------------------------------


def test_ipv6_loopback_is_refused_unless_allow_listed(server6: Any) -> None:
    url = server6.url("/page.html")

    refused = fetcher().fetch(url)
    allowed = fetcher(["::1"]).fetch(url)
    by_network = fetcher(["::1/128"]).fetch(url)

    assert refused.error_code == "blocked_address" and "loopback" in (refused.error or "")
    assert allowed.error is None, allowed.error
    assert allowed.title == "SOF release notes" and allowed.connected == ["::1"]
    assert by_network.error is None


def test_an_ipv6_answer_for_a_name_is_checked_too(server6: Any, scripted: Any) -> None:
    resolver = scripted({"six.test": [["::1"]]})
    url = f"http://six.test:{server6.port}/plain.txt"

    refused = fetcher(resolver=resolver).fetch(url)
    allowed = fetcher(["::1"], resolver).fetch(url)

    assert refused.error_code == "blocked_address"
    assert "six.test (resolves to ::1): a loopback address" in (refused.error or "")
    assert allowed.error is None and allowed.connected == ["::1"]


def test_the_system_resolver_is_guarded_too(server: Any) -> None:
    # "localhost" through the real resolver (getaddrinfo): refused, then allowed by name.
    url = f"http://localhost:{server.port}/plain.txt"

    refused = fetcher().fetch(url)
    allowed = fetcher(["localhost"]).fetch(url)

    assert refused.error_code == "blocked_address"
    assert "localhost (resolves to " in (refused.error or "")
    assert "a loopback address" in (refused.error or "")
    assert allowed.error is None, allowed.error
    assert allowed.connected[-1] == "127.0.0.1"


def test_an_ipv4_entry_also_allows_its_ipv4_mapped_form() -> None:
    allow = AllowList.parse(["127.0.0.1"])

    assert allow.network_entry(ipaddress.ip_address("::ffff:127.0.0.1")) is not None
    assert allow.network_entry(ipaddress.ip_address("::ffff:127.0.0.2")) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=80),
    st.builds(lambda host: f"http://{host}/", st.text(max_size=40)),
    st.builds(lambda a, b: f"http://{a}.{b}/", st.integers(-1, 2**33).map(str),
              st.sampled_from(["0x7f", "0177", "1", "", "0x", "99999999999", "::1"])),
))
def test_any_text_as_a_url_is_a_result_or_a_typed_refusal(text: str) -> None:
    # Parsing and the guard see hostile URLs first: whatever the text, they either accept
    # it (a checked target) or refuse it with a FetchFailure; nothing else escapes.
    from sof_web.fetch import FetchFailure, Guard, parse_url

    def no_dns(host: str, port: int, timeout: float) -> list[str]:
        raise OSError("no DNS in this test")

    guard = Guard(AllowList(), no_dns, lambda: 0.0)
    try:
        target = guard.check(parse_url(text), deadline=10.0)
    except FetchFailure as failure:
        assert failure.code in {"invalid_url", "blocked_address", "dns"}
        return
    assert all(why_blocked(address) is None for address in target.addresses)
