"""Hostile servers: oversize and endless bodies, decompression bombs, slow drips, hangs,
wrong content types, broken encodings and broken HTTP. Each is cut off or refused with a
reason, quickly, and never raises out of the fetcher.

The scenarios are real (conftest.py's server on 127.0.0.1). Time bounds below only catch
hangs: each is several times what the guard needs.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sof_web import Fetcher, WebSettings
from sof_web.fetch import FetchResult

KB = 1024


@pytest.fixture(autouse=True, scope="module")
def _httpx_imported() -> None:
    """sof-web imports httpx at its first fetch; done here, outside the timed calls, so a
    loaded machine's slow first import is never taken for a hang."""
    import httpx  # noqa: F401


def fetch(url: str, **settings: Any) -> FetchResult:
    settings.setdefault("web_allowed_hosts", ["127.0.0.1"])
    return Fetcher(WebSettings.from_mapping(settings)).fetch(url)


# --- size ----------------------------------------------------------------------------------------


def test_an_oversize_body_is_cut_at_max_bytes_and_flagged(server: Any) -> None:
    result = fetch(server.url("/big?size=300000"), max_bytes=64 * KB)

    assert result.error is None
    assert result.truncated is True
    assert result.bytes == 64 * KB
    assert result.text == "A" * (64 * KB)
    assert any("cut at 65536 bytes (max_bytes)" in note for note in result.notes)


def test_a_body_within_the_limit_is_whole(server: Any) -> None:
    result = fetch(server.url("/big?size=1000"), max_bytes=64 * KB)

    assert result.truncated is False and result.bytes == 1000


def test_an_endless_body_stops_at_the_limit(server: Any) -> None:
    started = time.monotonic()

    result = fetch(server.url("/endless"), max_bytes=256 * KB)

    assert result.error is None and result.truncated is True
    assert result.bytes == 256 * KB
    assert time.monotonic() - started < 5  # the server would stream for 8 s


def test_a_gzip_bomb_is_never_inflated_past_the_limit(server: Any) -> None:
    # 100 MB of "A" in ~100 kB of gzip: the decoder is bounded on every chunk.
    result = fetch(server.url("/gzip-bomb"), max_bytes=128 * KB)

    assert result.error is None and result.truncated is True
    assert result.bytes == 128 * KB


def test_the_text_and_html_are_capped_too(server: Any) -> None:
    result = fetch(server.url("/page.html"), max_text_chars=40, max_html_chars=100)

    assert result.error is None and result.truncated is True
    assert len(result.text) == 40
    assert result.html is not None and len(result.html) == 100


# --- time ----------------------------------------------------------------------------------------


def test_a_slow_drip_is_cut_off_by_the_fetch_deadline(server: Any) -> None:
    # One byte every 0.1 s never trips the 10 s read timeout; only the whole-fetch
    # deadline (fetch_timeout) stops it.
    started = time.monotonic()

    result = fetch(server.url("/drip"), fetch_timeout=1.0)

    elapsed = time.monotonic() - started
    assert result.error_code == "deadline", result.error
    assert "fetch_timeout 1s" in (result.error or "")
    assert elapsed < 4


def test_headers_dripped_forever_are_cut_off_too(server: Any) -> None:
    started = time.monotonic()

    result = fetch(server.url("/drip-headers"), fetch_timeout=1.0)

    assert result.error_code == "deadline", result.error
    assert time.monotonic() - started < 4


def test_a_server_that_never_answers_hits_the_read_timeout(server: Any) -> None:
    started = time.monotonic()

    result = fetch(server.url("/hang"), read_timeout=0.5)

    assert result.error_code == "timeout", result.error
    assert "did not answer within read_timeout 0.5s" in (result.error or "")
    assert time.monotonic() - started < 4


def test_a_deadline_given_by_the_caller_wins_over_fetch_timeout(server: Any) -> None:
    fetcher = Fetcher(WebSettings.from_mapping({"web_allowed_hosts": ["127.0.0.1"]}))
    started = time.monotonic()

    result = fetcher.fetch(server.url("/drip"), deadline=time.monotonic() + 0.7)

    assert result.error_code == "deadline"
    assert time.monotonic() - started < 3


def test_a_closed_port_is_a_connect_error(server: Any) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = fetch(f"http://127.0.0.1:{port}/")

    assert result.error_code == "connect", result.error


# --- content types -------------------------------------------------------------------------------


@pytest.mark.parametrize("path, sent", [
    ("/image.png", "'image/png'"),
    ("/no-type", "no Content-Type"),
    ("/xhtml", "'application/octet-stream'"),
])
def test_other_content_types_are_refused(server: Any, path: str, sent: str) -> None:
    result = fetch(server.url(path))

    assert result.error_code == "content_type"
    assert f"the server sent {sent}; only text/html, text/plain, application/json" in (
        result.error or "")
    assert result.text == "" and result.bytes == 0  # the body was never read


@pytest.mark.parametrize("status", [403, 404, 500])
def test_http_errors_are_reported_with_the_status(server: Any, status: int) -> None:
    result = fetch(server.url(f"/status/{status}"))

    assert result.error_code == "http_status" and result.status == status
    assert f"the server answered HTTP {status}" in (result.error or "")
    assert result.text == ""


# --- encodings -----------------------------------------------------------------------------------


def test_bytes_invalid_in_the_declared_charset_become_replacement_characters(
    server: Any
) -> None:
    result = fetch(server.url("/invalid-utf8"))

    assert result.error is None
    assert result.text == "caf\ufffd \ufffd\ufffd ok"
    assert any("not valid utf-8" in note for note in result.notes)


def test_an_unknown_charset_is_ignored_and_utf8_tried(server: Any) -> None:
    result = fetch(server.url("/bogus-charset"))

    assert result.error is None and result.text == "café" and result.charset == "utf-8"
    assert any("ignored the declared charset 'x-no-such-charset'" in n for n in result.notes)


@pytest.mark.parametrize("path", ["/utf7", "/unicode-escape"])
def test_charsets_that_transform_text_are_refused(server: Any, path: str) -> None:
    result = fetch(server.url(path))

    assert result.error is None
    assert "<script>" not in result.text and result.charset == "utf-8"
    assert any("ignored the declared charset" in note for note in result.notes)
    assert result.text in ("+ADw-script+AD4-alert(1)+ADw-/script+AD4-", "\\u0041\\u0042")


def test_latin1_without_a_charset_falls_back_to_windows_1252(server: Any) -> None:
    result = fetch(server.url("/latin1"))

    assert result.text == "café" and result.charset == "cp1252"


def test_meta_charset_and_byte_order_marks_are_honoured(server: Any) -> None:
    meta = fetch(server.url("/meta-charset"))
    utf16 = fetch(server.url("/utf16"))

    assert meta.title == "Привет" and "Привет, мир" in meta.text
    assert utf16.text == "hello utf16"


def test_control_characters_are_dropped_but_zero_width_kept_for_vetting(server: Any) -> None:
    result = fetch(server.url("/controls"))

    assert result.text == "ab[31mred\nc\u200bd"


@pytest.mark.parametrize("path, code, message", [
    ("/deep.json", "decode", "nested too deeply"),
    ("/bad.json", "decode", "not valid JSON"),
    ("/corrupt-gzip", "decode", "gzip body is corrupt"),
    ("/brotli", "protocol", "only gzip and deflate are read"),
])
def test_unreadable_bodies_are_refused_with_the_reason(
    server: Any, path: str, code: str, message: str
) -> None:
    result = fetch(server.url(path))

    assert result.error_code == code, result.error
    assert message in (result.error or "")


def test_a_deeply_nested_html_page_still_gives_text(server: Any) -> None:
    result = fetch(server.url("/deep.html"))

    assert result.error is None
    assert "deep text" in result.text


# --- broken HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/lying-length", "/garbage"])
def test_broken_http_is_a_protocol_error(server: Any, path: str) -> None:
    result = fetch(server.url(path))

    assert result.error_code in ("protocol", "network"), result.error
    assert "127.0.0.1" in (result.error or "")
