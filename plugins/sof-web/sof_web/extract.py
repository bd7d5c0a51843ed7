"""From a response body to readable text: choosing the encoding, then HTML's main text
(trafilatura), plain text as it is, or JSON pretty-printed.

Everything here treats the body as hostile: a declared charset may be unknown, a codec
that transforms rather than decodes (``unicode_escape``, ``rot13``), or UTF-7 (which turns
innocent-looking ASCII into markup); bytes may not fit the declared charset; HTML may be
nested a hundred thousand levels deep; JSON may be nested past the recursion limit. None of
it raises out of this module except as ``ExtractionError`` with a clear reason, and control
characters other than tab and newline never reach the text (zero-width and other format
characters are kept: the vetting skill looks for them).
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

#: Codecs a page may not choose: they transform text rather than decode it, or (UTF-7) let
#: plain ASCII smuggle markup past filters.
_REFUSED_CODECS = frozenset({
    "utf_7", "unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined",
    "rot_13", "base64_codec", "hex_codec", "quopri_codec", "uu_codec", "zlib_codec",
    "bz2_codec", "mbcs", "oem",
})
#: HTML's encoding sniffing looks at this much of the body for <meta charset>.
_SNIFF_BYTES = 4096
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.IGNORECASE
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: C0/C1 control characters except tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BLANK_LINES = re.compile(r"\n{3,}")
MAX_TITLE_CHARS = 500
#: trafilatura gives up on trees larger than this (elements); the baseline extractor is used.
MAX_TREE_SIZE = 200_000


class ExtractionError(ValueError):
    """The body could not be turned into text; ``code`` is ``"decode"``."""

    code = "decode"


@dataclass
class Extracted:
    text: str
    title: str | None = None
    charset: str | None = None
    html: str | None = None
    notes: list[str] = field(default_factory=list)


def usable_codec(label: str | None) -> str | None:
    """The Python codec for a charset label, or None when unknown or refused."""
    if not label:
        return None
    try:
        info = codecs.lookup(label.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    name = info.name.replace("-", "_")
    if name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode(body: bytes, declared: str | None, media_type: str) -> tuple[str, str, list[str]]:
    """``(text, charset used, notes)``: the declared charset if usable, else a BOM, else (for
    HTML) ``<meta charset>``, else UTF-8 if the bytes are valid UTF-8, else windows-1252
    (HTML's default). Bytes invalid in the chosen charset become U+FFFD, with a note."""
    notes: list[str] = []
    charset = usable_codec(declared)
    if declared and charset is None:
        notes.append(f"ignored the declared charset {declared[:40]!r} (unknown or not allowed)")
    if charset is None:
        for bom, name in _BOMS:
            if body.startswith(bom):
                charset = name
                body = body[len(bom):]
                break
    if charset is None and media_type == "text/html":
        match = _META_CHARSET.search(body[:_SNIFF_BYTES])
        if match:
            charset = usable_codec(match.group(1).decode("ascii", "replace"))
    if charset is None:
        try:
            return _clean(body.decode("utf-8")), "utf-8", notes
        except UnicodeDecodeError:
            charset = "cp1252" if media_type != "application/json" else "utf-8"
    try:
        text = body.decode(charset)
    except UnicodeDecodeError:
        text = body.decode(charset, errors="replace")
        notes.append(f"the body is not valid {charset}; invalid bytes were replaced with U+FFFD")
    return _clean(text), charset, notes


def _clean(text: str) -> str:
    """Normalise line ends and drop control characters (NUL, escape sequences, ...)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def extract(body: bytes, media_type: str, declared_charset: str | None,
            *, max_text_chars: int, max_html_chars: int) -> tuple[Extracted, bool]:
    """The readable text of ``body``; the flag says whether text or html was cut."""
    text, charset, notes = decode(body, declared_charset, media_type)
    if media_type == "application/json":
        result = Extracted(_json_text(text), charset=charset, notes=notes)
    elif media_type == "text/html":
        result = _html(text)
        result.charset, result.notes = charset, notes
    else:
        result = Extracted(_tidy(text), charset=charset, notes=notes)
    cut = False
    if len(result.text) > max_text_chars:
        result.text, cut = result.text[:max_text_chars], True
    if result.html is not None and len(result.html) > max_html_chars:
        result.html, cut = result.html[:max_html_chars], True
    return result, cut


def _json_text(text: str) -> str:
    try:
        value: Any = json.loads(text)
    except RecursionError:
        raise ExtractionError("the JSON is nested too deeply to read") from None
    except ValueError as exc:
        raise ExtractionError(f"the body is not valid JSON ({exc})") from None
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (RecursionError, ValueError):
        raise ExtractionError("the JSON is nested too deeply to read") from None


_CONFIG: Any = None


def _trafilatura() -> tuple[Any, Any]:
    """trafilatura (~250 ms to import: done on first use, in the worker that fetches) and
    its settings: trees over ``MAX_TREE_SIZE`` elements are left to the baseline extractor."""
    global _CONFIG
    import trafilatura
    from trafilatura.settings import use_config

    if _CONFIG is None:
        config = use_config()
        config.set("DEFAULT", "MAX_TREE_SIZE", str(MAX_TREE_SIZE))
        _CONFIG = config
    return trafilatura, _CONFIG


def _html(text: str) -> Extracted:
    """Main text by trafilatura (boilerplate such as menus and footers dropped); when it
    finds no main text (a tiny or odd page) its baseline extractor (all visible text).
    Nothing here fetches: trafilatura gets the decoded document, never a URL."""
    trafilatura, config = _trafilatura()
    try:
        tree = trafilatura.load_html(text)
    except Exception:  # lxml refuses some hostile documents outright
        tree = None
    if tree is None:  # no markup at all: the "HTML" is text
        return Extracted(_tidy(text), html=text)
    main = ""
    try:
        doc = trafilatura.bare_extraction(
            tree, include_comments=False, include_tables=True, favor_recall=True,
            deduplicate=False, config=config,
        )
    except (Exception, RecursionError):
        doc = None
    if doc is not None and not isinstance(doc, dict):
        main = doc.text or ""
    if not main.strip():
        try:
            main = trafilatura.html2txt(text)
        except (Exception, RecursionError):
            main = ""
    if not main.strip():  # lxml gives up on some documents (nesting past its depth limit)
        main = _visible_text(text)
    return Extracted(_tidy(_clean(main)), title=_title(tree), html=text)


class _TextParser(HTMLParser):
    """All text outside ``script``/``style``/``template``, block elements on new lines. The
    stdlib parser keeps no tree, so no nesting depth can stop it."""

    _SKIP = frozenset({"script", "style", "template", "noscript"})
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                         "section", "article", "blockquote", "pre", "table", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _visible_text(html: str) -> str:
    parser = _TextParser()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is tolerant; keep what was read
        pass
    lines = "".join(parser.parts).split("\n")
    return "\n".join(" ".join(line.split()) for line in lines if line.strip())


def _title(tree: Any) -> str | None:
    """``<title>``, else ``og:title``, else the first ``<h1>``."""
    for path in ("//title//text()", '//meta[@property="og:title"]/@content', "//h1//text()"):
        try:
            found = " ".join(str(part) for part in tree.xpath(path)[:50])
        except Exception:
            continue
        if found.strip():
            return _short(found)
    return None


def _short(value: str) -> str:
    value = " ".join(_clean(unicodedata.normalize("NFC", value)).split())
    return value[:MAX_TITLE_CHARS]


__all__ = ["Extracted", "ExtractionError", "decode", "extract", "usable_codec"]
