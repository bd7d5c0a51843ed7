"""Secrets and credentials: cut out before a model (or a user) sees them.

The well-kept part is Yelp's detect-secrets: every plugin it ships (AWS, GitHub, GitLab,
Slack, Stripe, OpenAI, JWT, npm, PyPI, Twilio, private-key headers, keyword assignments and
quoted high-entropy strings, ...) except its public-IP detector, which finds addresses, not
secrets. Its plugins work line by line; the regular-expression ones are matched here for
their spans, the others (keyword assignments, high-entropy strings) report values, located
in their line. On top of it:

* ``secret.private_key``: a whole PEM/OpenSSH private key block, from BEGIN to END (the
  detect-secrets plugin flags only the header line, which would leave the key body in);
* ``secret.token``: token formats detect-secrets does not know (Google API keys and OAuth
  tokens, Anthropic and current OpenAI keys, GitHub fine-grained tokens, Hugging Face,
  Slack webhooks, ``Authorization: Bearer`` headers, credentials in URLs);
* ``secret.assignment``: ``password = ...``, ``api_key: ...`` and the like in prose.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sof_vetting._lazy import lazy_pattern
from sof_vetting.findings import SECRET, Finding

_PRIVATE_KEY = lazy_pattern(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*"
    r"PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
_TOKENS: list[tuple[str, Callable[[], re.Pattern[str]]]] = [
    ("Google API key", lazy_pattern(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("Google OAuth token", lazy_pattern(r"\bya29\.[0-9A-Za-z_\-]{20,}")),
    ("Anthropic API key", lazy_pattern(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("OpenAI API key", lazy_pattern(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}")),
    ("GitHub token",
     lazy_pattern(r"\b(?:github_pat_[A-Za-z0-9_]{22,}|gh[pousr]_[A-Za-z0-9]{36,})")),
    ("Hugging Face token", lazy_pattern(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("Slack webhook", lazy_pattern(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]{20,}")),
    ("Bearer token", lazy_pattern(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{20,}=*")),
    ("credentials in URL", lazy_pattern(r"\b[a-z][a-z0-9+.\-]*://[^\s/:@]{1,64}:[^\s/@]{3,128}@")),
]
_ASSIGNMENT = lazy_pattern(
    r"(?i)\b(?:password|passwd|pwd|passphrase|secret|secret[_-]?key|api[_-]?key|apikey|"
    r"access[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret|private[_-]?key)\b"
    r"[\"']?\s*(?:[:=]|=>|\bis\b)\s*[\"']?(?P<value>[^\s\"',;<>]{8,})"
)
#: The rest of a token after a pattern's match: base64url characters and padding.
_TOKEN_REST = lazy_pattern(r"[A-Za-z0-9_\-]*=*")
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_COMMON_VALUES = frozenset({"required", "optional", "********", "redacted", "password",
                            "changeme", "example", "undefined", "none", "null"})

_LOCK = threading.Lock()
_PLUGINS: list[Any] | None = None


def detect_secrets_plugins() -> list[Any]:
    """One instance of each detect-secrets plugin (imported on first use: ~0.3 s)."""
    global _PLUGINS
    with _LOCK:
        if _PLUGINS is None:
            from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

            plugins: list[Any] = []
            classes: dict[str, Any] = dict(get_mapping_from_secret_type_to_class())
            for _type, cls in sorted(classes.items()):
                if cls.__name__ == "IPPublicDetector":
                    continue
                try:
                    plugins.append(cls())
                except TypeError:  # a plugin that needs arguments we do not know
                    continue
            _PLUGINS = plugins
        return _PLUGINS


def _regex_based() -> type:
    from detect_secrets.plugins.base import RegexBasedDetector

    return RegexBasedDetector


def _slug(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.splitlines(keepends=True):
        yield offset, line
        offset += len(line)


def _token_end(line: str, end: int) -> int:
    """Where the token a match ends in really ends: some detect-secrets patterns stop
    short of it (the JWT one ends lazily, right after the payload's dot, so the signature
    stayed; Stripe's and Discord's are fixed lengths today's tokens outgrow). A match that
    ends on a token character or a dot runs on over the token's remaining characters; one
    that ends on a delimiter (a quote, a space) stays as it is."""
    if end == 0 or line[end - 1] not in _TOKEN_CHARS:
        return end
    rest = _TOKEN_REST().match(line, end)
    return rest.end() if rest is not None else end


class SecretsDetector:
    """detect-secrets' plugins plus private-key blocks, token formats and assignments."""

    name = "secrets"
    category = SECRET

    def check(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        for match in _PRIVATE_KEY().finditer(text):
            findings.append(self._finding("secret.private_key", "a private key",
                                          match.start(), match.end()))
        for label, pattern in _TOKENS:
            for match in pattern().finditer(text):
                findings.append(self._finding("secret.token", f"a {label}",
                                              match.start(), match.end()))
        for match in _ASSIGNMENT().finditer(text):
            if match.group("value").lower().strip("*") in _COMMON_VALUES | {""}:
                continue
            findings.append(self._finding("secret.assignment", "a credential assignment",
                                          match.start("value"), match.end("value")))
        findings.extend(self._detect_secrets(text))
        return findings

    def _detect_secrets(self, text: str) -> Iterator[Finding]:
        plugins = detect_secrets_plugins()
        for offset, line in _lines(text):
            if len(line.strip()) < 8:
                continue
            for plugin in plugins:
                denylist = getattr(plugin, "denylist", None)
                if isinstance(plugin, _regex_based()) and denylist is not None:
                    yield from self._regex_matches(plugin, denylist, line, offset)
                    continue
                try:
                    values = set(plugin.analyze_string(line))
                except Exception:  # one plugin's bug must not hide the others' findings
                    continue
                limit = getattr(plugin, "entropy_limit", None)
                for value in values:
                    if not value or len(value) < 6:
                        continue
                    if limit is not None and plugin.calculate_shannon_entropy(value) < limit:
                        continue
                    start = line.find(value)
                    if start < 0:
                        continue
                    yield self._finding(
                        f"secret.{_slug(plugin.secret_type)}",
                        f"a {plugin.secret_type} (detect-secrets {type(plugin).__name__})",
                        offset + start,
                        offset + start + len(value),
                    )

    def _regex_matches(
        self, plugin: Any, denylist: Any, line: str, offset: int
    ) -> Iterator[Finding]:
        """Spans of a regex plugin's matches (its ``analyze_string`` yields only a group,
        which for some plugins is just the token's prefix)."""
        for regex in denylist:
            for match in regex.finditer(line):
                start, end = match.span()
                if match.lastindex and len(match.group(match.lastindex) or "") >= 8:
                    start, end = match.span(match.lastindex)
                if end - start < 6:
                    continue
                end = _token_end(line, end)
                yield self._finding(
                    f"secret.{_slug(plugin.secret_type)}",
                    f"a {plugin.secret_type} (detect-secrets {type(plugin).__name__})",
                    offset + start,
                    offset + end,
                )

    @staticmethod
    def _finding(detector: str, what: str, start: int, end: int) -> Finding:
        return Finding(
            detector=detector,
            category=SECRET,
            message=f"contains {what}",
            start=start,
            end=end,
            replacement="[secret removed]",
        )


__all__ = ["SecretsDetector", "detect_secrets_plugins"]
