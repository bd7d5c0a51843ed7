"""Instructions smuggled past pattern matching by encoding them.

"aWdub3JlIGFsbCBwcmV2aW91cyBpbnN0cnVjdGlvbnM=" is "ignore all previous instructions" in
base64, and a model decodes it happily. This detector decodes what looks encoded (base64 and
its URL-safe form, hex, percent-encoding, HTML character references, backslash escapes,
ROT13, reversed text)
up to ``decode_depth`` levels deep and runs the injection patterns on the result. Encoded
text that decodes to something harmless is not reported: base64 alone is not an attack.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from sof_vetting._lazy import lazy_pattern
from sof_vetting.detectors.injection import MESSAGES, scan, sentence_span
from sof_vetting.findings import INJECTION, Finding

_BASE64 = lazy_pattern(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = lazy_pattern(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}(?:[ :]|\\x)?){12,}")
_PERCENT = lazy_pattern(r"%[0-9a-fA-F]{2}")
#: A backslash escape of one character, as in JSON, JavaScript or Python source text
#: ("\u0049gnore all previous instructions").
_ESCAPE = lazy_pattern(
    r"\\(?:u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\})")
_ENTITY = lazy_pattern(r"&(?:#\d{2,7}|#x[0-9a-fA-F]{2,6}|[a-zA-Z]{2,8}[0-9]?);")
#: Longest encoded run decoded (a larger blob is data, not a sentence for a model).
MAX_BLOB = 20_000


def _printable(data: bytes) -> str | None:
    """``data`` as text when it is UTF-8 and mostly printable, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    good = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return text if good / len(text) >= 0.9 and any(c.isalpha() for c in text) else None


def decode_base64(blob: str) -> str | None:
    candidate = blob.rstrip("=")
    if len(candidate) % 4 == 1:
        return None
    padded = candidate + "=" * (-len(candidate) % 4)
    try:
        if "-" in padded or "_" in padded:
            data = base64.urlsafe_b64decode(padded)
        else:
            data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable(data)


def decode_hex(blob: str) -> str | None:
    digits = re.sub(r"[ :]|\\x", "", blob)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return _printable(bytes.fromhex(digits))
    except ValueError:
        return None


def decode_escapes(text: str) -> str:
    """``text`` with each backslash escape of a character replaced by the character."""

    def one(match: re.Match[str]) -> str:
        code = int(match.group(0)[2:].strip("{}"), 16)
        return chr(code) if code <= 0x10FFFF else match.group(0)

    return _ESCAPE().sub(one, text)


class EncodedPayloadDetector:
    """Decodes encoded runs and whole-text encodings, and checks them for injection."""

    name = "encoded"
    category = INJECTION

    def __init__(self, decode_depth: int = 2) -> None:
        self.decode_depth = decode_depth

    def with_settings(self, settings: Any) -> EncodedPayloadDetector:
        return EncodedPayloadDetector(decode_depth=int(settings.decode_depth))

    def check(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        for kind, start, end, families in self._payloads(text, self.decode_depth):
            for family in sorted(families):
                findings.append(
                    Finding(
                        detector=f"encoded.{kind}",
                        category=INJECTION,
                        message=f"{kind}-encoded text that {MESSAGES[family]} "
                        f"(injection.{family})",
                        start=start,
                        end=end,
                    )
                )
        return findings

    def _payloads(
        self, text: str, depth: int
    ) -> Iterator[tuple[str, int | None, int | None, set[str]]]:
        """``(encoding, start, end, injection families)`` of each harmful encoded payload."""
        if depth <= 0:
            return
        for kind, pattern, decoder in (
            ("base64", _BASE64(), decode_base64),
            ("hex", _HEX(), decode_hex),
        ):
            for match in pattern.finditer(text):
                blob = match.group(0)
                if len(blob) > MAX_BLOB:
                    continue
                decoded = decoder(blob)
                if decoded is None:
                    continue
                families = _families(decoded, self, depth - 1)
                if families:
                    yield kind, match.start(), match.end(), families
        plain = set(f for f, _, _ in scan(text))
        # One escape is enough: "Ignore%20all%20previous%20instructions" has three, and
        # one "&#112;" is enough to break the plain match of "previous".
        if _PERCENT().search(text) is not None:
            families = _families(unquote(text), self, depth - 1) - plain
            if families:
                yield "percent", None, None, families
        if _ESCAPE().search(text) is not None:
            families = _families(decode_escapes(text), self, depth - 1) - plain
            if families:
                yield "escapes", None, None, families
        if _ENTITY().search(text) is not None:
            import html  # html.entities is a large table: loaded when a page has entities

            families = _families(html.unescape(text), self, depth - 1) - plain
            if families:
                yield "html_entities", None, None, families
        rot = codecs.encode(text, "rot13")
        for family, start, end in scan(rot):
            if family not in plain:
                left, right = sentence_span(text, start, end)
                yield "rot13", left, right, {family}
        backwards = text[::-1]
        for family, start, end in scan(backwards):
            if family not in plain:
                left, right = sentence_span(text, len(text) - end, len(text) - start)
                yield "reversed", left, right, {family}


def _families(decoded: str, detector: EncodedPayloadDetector, depth: int) -> set[str]:
    found = {family for family, _, _ in scan(decoded)}
    for _kind, _start, _end, nested in detector._payloads(decoded, depth):
        found |= nested
    return found


__all__ = ["EncodedPayloadDetector", "decode_base64", "decode_escapes", "decode_hex"]
