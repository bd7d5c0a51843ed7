"""Links a model should not pass on, follow or render.

* ``link.dangerous_scheme``: ``javascript:``, ``vbscript:``, ``data:``, ``file:`` URLs;
* ``link.deceptive_userinfo``: ``https://bank.example@evil.example/`` (the host is after the @);
* ``link.ip_host``: a raw IP address as host, in any spelling (``http://2130706433/``,
  ``http://0x7f.1/``, IPv6), private and loopback ones called out;
* ``link.idn_homograph``: punycode (``xn--``) or mixed-script host names;
* ``link.shortener``: URL shorteners, which hide the destination;
* ``link.image_exfiltration``: a Markdown image whose URL carries a query string, the
  classic channel for leaking conversation data when an answer is rendered;
* ``link.mismatched_text``: a Markdown link whose text names another host than its target.

Hosts in ``allowed_link_hosts`` (and their subdomains) are never reported.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from sof_vetting._lazy import lazy_pattern
from sof_vetting.findings import LINK, Finding

# A URL's parentheses belong to it when they are balanced (one level, as CommonMark and
# browsers' autolinkers read ``alert(1)`` or ``/wiki/Tide_(film)``); a ')' without its '('
# closes whatever the URL is written in.
_URL = lazy_pattern(
    r"(?i)\b(?:(?:https?|ftp|file)://(?:[^\s<>\"'`()]|\([^\s<>\"'`()]*\))+|"
    r"www\.(?:[^\s<>\"'`\]()]|\([^\s<>\"'`\]()]*\))+|"
    r"(?:javascript|vbscript|data):(?:[^\s<>\"'`\]()]|\([^\s<>\"'`\]()]*\))+)"
)
_DESTINATION = r"\(\s*<?((?:[^()\s>]|\([^()\s>]*\))+)>?[^)\n]{0,200}\)"
_MD_IMAGE = lazy_pattern(r"!\[[^\]\n]{0,200}\]" + _DESTINATION)
_MD_LINK = lazy_pattern(r"(?<!!)\[([^\]\n]{1,200})\]" + _DESTINATION)
_DOMAIN_IN_TEXT = lazy_pattern(r"(?i)\b((?:[a-z0-9-]+\.)+[a-z]{2,24})\b")
SHORTENERS = frozenset(
    "bit.ly tinyurl.com t.co goo.gl ow.ly is.gd buff.ly rebrand.ly cutt.ly shorturl.at "
    "tiny.cc rb.gy t.ly v.gd s.id lnkd.in trib.al bl.ink short.io qrco.de".split()
)
SUSPICIOUS_SCHEMES = ("javascript", "vbscript", "data", "file")


def parse_ip_host(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address in any spelling browsers accept, or None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                numbers.append(int(part, 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None
    value = 0
    for number in numbers[:-1]:
        if number > 255:
            return None
        value = value * 256 + number
    shift = 8 * (4 - len(numbers) + 1)
    if numbers[-1] >= 1 << shift:
        return None
    value = (value << shift) + numbers[-1]
    return ipaddress.IPv4Address(value) if value < 1 << 32 else None


def _scripts(label: str) -> set[str]:
    import unicodedata

    found = set()
    for char in label:
        if char.isalpha():
            found.add(unicodedata.name(char, "UNKNOWN").split(" ")[0])
    return found


class LinkDetector:
    """Reports links with the risks listed in the module docstring."""

    name = "links"
    category = LINK

    def __init__(self, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.allowed_hosts = tuple(h.lower().lstrip(".") for h in allowed_hosts)

    def with_settings(self, settings: Any) -> LinkDetector:
        return LinkDetector(allowed_hosts=tuple(settings.allowed_link_hosts))

    def check(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        seen: set[tuple[int, int]] = set()
        markdown: dict[int, tuple[int, int]] = {}  # a destination's start: its link's span
        for match in _MD_IMAGE().finditer(text):
            markdown[match.start(1)] = match.span()
            url = match.group(1)
            parts = _split(url)
            if parts is not None and parts.query and not self._allowed(parts.hostname or ""):
                findings.append(self._finding(
                    "link.image_exfiltration",
                    "a Markdown image whose URL carries data in its query string",
                    match.start(), match.end(),
                ))
        for match in _MD_LINK().finditer(text):
            markdown[match.start(2)] = match.span()
            label, url = match.group(1), match.group(2)
            parts = _split(url)
            host = (parts.hostname or "").lower() if parts is not None else ""
            shown = _DOMAIN_IN_TEXT().search(label)
            if host and shown and not self._allowed(host):
                named = shown.group(1).lower()
                if not (host == named or host.endswith("." + named) or named.endswith(
                    "." + host
                )):
                    findings.append(self._finding(
                        "link.mismatched_text",
                        f"a link whose text names {named} but which goes to {host}",
                        match.start(), match.end(),
                    ))
        for match in _URL().finditer(text):
            span = (match.start(), match.end())
            if span in seen:
                continue
            seen.add(span)
            url = match.group(0).rstrip(".,;:!?")
            if url.endswith("]") and "[" not in url:
                url = url.rstrip("]")
            # A risky Markdown link goes whole, its text (the lure) and brackets too; a bare
            # URL goes without the punctuation that ends the sentence it is in.
            cut = markdown.get(match.start(), (match.start(), match.start() + len(url)))
            for detector, message in self._url_risks(url):
                findings.append(self._finding(detector, message, *cut))
        return findings

    def _allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == h or host.endswith("." + h) for h in self.allowed_hosts)

    def _url_risks(self, url: str) -> Iterator[tuple[str, str]]:
        scheme = url.split(":", 1)[0].lower()
        if scheme in SUSPICIOUS_SCHEMES:
            yield "link.dangerous_scheme", f"a {scheme}: link"
            return
        parts = _split(url if "://" in url else f"http://{url}")
        if parts is None:
            return
        netloc = parts.netloc
        host = (parts.hostname or "").lower()
        if self._allowed(host):
            return
        if "@" in netloc:
            yield "link.deceptive_userinfo", f"a link with user information before its host {host}"
        address = parse_ip_host(host) if host else None
        if address is not None:
            kind = (
                "private or loopback " if address.is_private or address.is_loopback
                or address.is_link_local or address.is_reserved else ""
            )
            yield "link.ip_host", f"a link to the {kind}IP address {address}"
        if any(label.startswith("xn--") for label in host.split(".")) or len(
            _scripts(host)
        ) > 1:
            yield "link.idn_homograph", f"a link to an internationalised host name ({host})"
        if host in SHORTENERS:
            yield "link.shortener", f"a shortened link ({host}) hiding its destination"

    @staticmethod
    def _finding(detector: str, message: str, start: int, end: int) -> Finding:
        return Finding(
            detector=detector,
            category=LINK,
            message=f"contains {message}",
            start=start,
            end=end,
            replacement="[link removed]",
        )


def _split(url: str) -> Any:
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018  (raises on a malformed netloc)
        parts.port  # noqa: B018
    except ValueError:
        return None
    return parts


__all__ = ["SHORTENERS", "LinkDetector", "parse_ip_host"]
