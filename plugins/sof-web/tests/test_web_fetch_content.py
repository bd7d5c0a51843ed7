"""What a successful fetch gives: readable main text, title, final URL, status, type, time.

Every page comes from the real HTTP server in conftest.py on 127.0.0.1, allow-listed.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from sof_web import Fetcher, WebSettings
from sof_web.fetch import FetchResult

ENTRY_KEYS = {
    "source", "tool", "url", "final_url", "status", "title", "content_type", "charset",
    "text", "html", "fetched_at", "truncated", "bytes", "redirects", "error", "error_code",
}


def fetch(url: str, **settings: Any) -> FetchResult:
    settings.setdefault("web_allowed_hosts", ["127.0.0.1"])
    return Fetcher(WebSettings.from_mapping(settings)).fetch(url)


def test_html_gives_the_main_text_without_boilerplate(server: Any) -> None:
    url = server.url("/page.html")
    before = datetime.now(timezone.utc).replace(microsecond=0)

    result = fetch(url)

    assert result.error is None, result.error
    assert result.status == 200
    assert result.final_url == url
    assert result.title == "SOF release notes"
    assert result.content_type == "text/html"
    assert result.charset == "utf-8"
    assert "routes every query through a validated plan of skills" in result.text
    assert "isolated worker processes" in result.text
    # trafilatura drops the menu, the footer and scripts
    assert "Blog" not in result.text
    assert "All rights reserved" not in result.text
    assert "tracking" not in result.text
    assert result.html is not None and "<nav>" in result.html  # markup kept for detectors
    fetched = datetime.strptime(result.fetched_at, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc)
    assert before <= fetched <= datetime.now(timezone.utc)
    assert result.bytes == len(server_page_bytes(server))
    assert result.redirects == [] and result.truncated is False


def server_page_bytes(server: Any) -> bytes:
    import httpx

    return httpx.get(server.url("/page.html")).content


def test_plain_text_and_json_are_read(server: Any) -> None:
    plain = fetch(server.url("/plain.txt"))
    data = fetch(server.url("/data.json"))

    assert plain.error is None and plain.content_type == "text/plain"
    assert plain.text == "Plain words.\nSecond line."
    assert plain.title is None and plain.html is None
    assert data.error is None and data.content_type == "application/json"
    assert json.loads(data.text) == {"name": "SOF", "skills": [1, 2]}
    assert data.text.startswith("{\n  ")  # pretty-printed for reading


def test_redirects_are_followed_and_recorded(server: Any) -> None:
    start = server.url("/chain/2")

    result = fetch(start)

    assert result.error is None, result.error
    assert result.final_url == server.url("/page.html")
    assert result.redirects == [start, server.url("/chain/1"), server.url("/chain/0")]
    assert result.title == "SOF release notes"


def test_gzip_and_raw_deflate_bodies_are_decoded(server: Any) -> None:
    page = fetch(server.url("/gzip"))
    raw = fetch(server.url("/deflate-raw"))

    assert page.error is None and page.title == "SOF release notes"
    assert raw.error is None and raw.text == "raw deflate text"


def test_the_title_falls_back_and_is_tidied(server: Any) -> None:
    result = fetch(server.url("/title-only"))

    assert result.error is None
    assert result.title == "Lonely title"


def test_every_entry_has_every_documented_key(server: Any) -> None:
    ok = fetch(server.url("/page.html")).as_entry()
    failed = fetch(server.url("/status/404")).as_entry()

    assert set(ok) == ENTRY_KEYS and set(failed) == ENTRY_KEYS
    assert ok["source"] == "web" and ok["tool"] == "AgentZeroWebBrowserTool"
    assert failed["error_code"] == "http_status" and failed["text"] == ""
    assert failed["status"] == 404 and "HTTP 404" in failed["error"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", failed["fetched_at"])


def test_https_is_verified_against_the_ca_bundle(tls_server: Any, scripted: Any) -> None:
    resolver = scripted({"web.test": [["127.0.0.1"]]})
    settings = WebSettings.from_mapping({"web_allowed_hosts": ["127.0.0.1"]})
    url = tls_server.server.url("/page.html", host=tls_server.hostname)

    trusted = Fetcher(settings, resolver=resolver,
                      ssl_context=tls_server.client_context).fetch(url)
    untrusted = Fetcher(settings, resolver=resolver).fetch(url)  # certifi's CAs only

    assert trusted.error is None, trusted.error
    assert trusted.title == "SOF release notes"
    assert untrusted.error_code == "tls" and "web.test" in (untrusted.error or "")



def test_the_title_comes_from_og_title_or_the_first_heading_when_title_is_missing() -> None:
    from sof_web.extract import extract

    og, _ = extract(b'<html><head><meta property="og:title" content="From OG"></head>'
                    b"<body><h1>Heading</h1><p>Body text here.</p></body></html>",
                    "text/html", "utf-8", max_text_chars=1000, max_html_chars=1000)
    h1, _ = extract(b"<html><body><h1>Only  a\nheading</h1><p>Body text.</p></body></html>",
                    "text/html", "utf-8", max_text_chars=1000, max_html_chars=1000)

    assert og.title == "From OG"
    assert h1.title == "Only a heading"


def test_proxy_variables_are_not_used(server: Any, monkeypatch: Any) -> None:
    # A proxy would be a way around the guard (it resolves and connects for us).
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens on port 9

    result = fetch(server.url("/plain.txt"))

    assert result.error is None, result.error
    assert result.connected == ["127.0.0.1"]
