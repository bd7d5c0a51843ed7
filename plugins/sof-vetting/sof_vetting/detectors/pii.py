"""Personal data: e-mail addresses, phone numbers, payment cards, IBANs, US SSNs.

Numbers are validated, not just matched, so prices, dates and order numbers stay: phone
numbers through Google's libphonenumber (``phonenumbers``, leniency VALID: a real number
plan, not any run of digits), card numbers by the Luhn checksum and a known issuer prefix,
IBANs by country length and the ISO 7064 mod-97 check (``python-stdnum``).
"""

from __future__ import annotations

import re
from typing import Any

from sof_vetting._lazy import lazy_pattern
from sof_vetting.findings import PII, Finding

_EMAIL = lazy_pattern(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"
)
_CARD = lazy_pattern(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = lazy_pattern(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}")
_SSN = lazy_pattern(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
#: Issuer prefixes of the card networks: Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37,
#: Diners 30/36/38, JCB 35, Discover and UnionPay 6, Maestro 50-58 and 6.
_CARD_PREFIX = lazy_pattern(r"^(?:4|5[0-8]|2[2-7]|3[0-8]|6)")


def luhn_valid(digits: str) -> bool:
    from stdnum import luhn

    return bool(luhn.is_valid(digits))


def iban_valid(candidate: str) -> bool:
    from stdnum import iban

    return bool(iban.is_valid(candidate))


class PIIDetector:
    """E-mails, phone numbers (libphonenumber), Luhn-valid cards, mod-97-valid IBANs, SSNs."""

    name = "pii"
    category = PII

    def __init__(self, phone_region: str = "US", phones: bool = True) -> None:
        self.phone_region = phone_region
        self.phones = phones

    def with_settings(self, settings: Any) -> PIIDetector:
        disabled = tuple(settings.disabled)
        phones = not any(d in ("pii.phone", "pii") for d in disabled)
        return PIIDetector(phone_region=settings.phone_region, phones=phones)

    def check(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        for match in _EMAIL().finditer(text):
            findings.append(_finding("pii.email", "an e-mail address", match.start(),
                                     match.end(), "[email removed]"))
        cards: list[tuple[int, int]] = []
        for match in _CARD().finditer(text):
            digits = re.sub(r"\D", "", match.group(0))
            if 13 <= len(digits) <= 19 and _CARD_PREFIX().match(digits) and luhn_valid(digits):
                cards.append((match.start(), match.end()))
                findings.append(_finding("pii.card_number", "a payment card number (Luhn-valid)",
                                         match.start(), match.end(), "[card number removed]"))
        for match in _IBAN().finditer(text):
            span = _valid_iban_span(match.group(0))
            if span is not None:
                findings.append(_finding("pii.iban", "an IBAN (mod-97 valid)",
                                         match.start(), match.start() + span,
                                         "[IBAN removed]"))
        for match in _SSN().finditer(text):
            findings.append(_finding("pii.ssn", "a US social security number", match.start(),
                                     match.end(), "[SSN removed]"))
        if self.phones:
            findings.extend(self._phones(text, cards))
        return findings

    def _phones(self, text: str, cards: list[tuple[int, int]]) -> list[Finding]:
        import phonenumbers

        found: list[Finding] = []
        matcher = phonenumbers.PhoneNumberMatcher(
            text, self.phone_region, leniency=phonenumbers.Leniency.VALID, max_tries=1000
        )
        for match in matcher:
            if any(start <= match.start < end for start, end in cards):
                continue
            found.append(_finding("pii.phone", "a phone number", match.start, match.end,
                                  "[phone number removed]"))
        return found


def _valid_iban_span(candidate: str) -> int | None:
    """Length of the longest prefix of ``candidate`` that is a valid IBAN, or None."""
    positions = [i + 1 for i, c in enumerate(candidate) if c != " "]
    compact = candidate.replace(" ", "")
    for length in range(min(len(compact), 34), 14, -1):
        if iban_valid(compact[:length]):
            return positions[length - 1]
    return None


def _finding(detector: str, what: str, start: int, end: int, replacement: str) -> Finding:
    return Finding(
        detector=detector,
        category=PII,
        message=f"contains {what}",
        start=start,
        end=end,
        replacement=replacement,
    )


__all__ = ["PIIDetector", "iban_valid", "luhn_valid"]
