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
import importlib
import json
import re
import time
import unicodedata
from collections.abc import Callable
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
#: What html.parser gives back as text at the end when a construct is left open.
_MARKUP_START = re.compile(r"<[!/?a-zA-Z]")
MAX_TITLE_CHARS = 500
#: trafilatura gives up on trees larger than this (elements); the baseline extractor is used.
MAX_TREE_SIZE = 200_000
#: Table cells per row handed to trafilatura: it caps a table's width at 100 columns, and its
#: time per row grows with the square of the row's cells, so longer rows are split.
MAX_ROW_CELLS = 100
#: An element with more inline children than this has them unwrapped (their text kept) before
#: trafilatura sees it: trafilatura unwraps them itself, leaving as many adjacent text nodes,
#: and lxml's XPath over those takes time growing faster than their square (60,000 <span>s
#: or <em>s in one paragraph: 30 s and more, in one uninterruptible call). Links are among
#: them: a run that long is a list of links, whose words are its text.
MAX_INLINE_RUN = 500
_INLINE = (
    "a", "span", "font", "em", "i", "b", "strong", "u", "s", "strike", "small", "big", "mark",
    "sub", "sup", "abbr", "acronym", "cite", "dfn", "ins", "del", "tt", "q", "nobr", "bdi",
    "bdo", "data", "time", "kbd", "samp", "var",
)


class ExtractionError(ValueError):
    """The body could not be turned into text; ``code`` is ``"decode"``."""

    code = "decode"


class ExtractionTimeout(ExtractionError):
    """Turning the body into text did not end by the deadline ``extract`` was given."""

    code = "deadline"


_LATE = "the page could not be turned into text in the time left"


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
            *, max_text_chars: int, max_html_chars: int, deadline: float | None = None,
            clock: Callable[[], float] = time.monotonic) -> tuple[Extracted, bool]:
    """The readable text of ``body``; the flag says whether text or html was cut. With a
    ``deadline`` (``clock()`` seconds): no time left raises ``ExtractionTimeout`` before any
    work, and extraction that ends past it raises it after.

    Extraction is not interrupted midway. Raising into the extracting thread from a timer
    (``PyThreadState_SetAsyncExc``) was tried: the exception lands in whatever Python code
    runs next in that thread, a garbage-collection callback or a library's ``finally``
    included, where it cannot be handled. The shapes known to make trafilatura slow are
    reshaped first (``_split_wide_rows``, ``_merge_inline_runs``), and the tool's own
    deadline (its isolation worker is killed at ``max_execution_time``) is the hard stop."""
    if deadline is not None and deadline - clock() <= 0:
        raise ExtractionTimeout("no time was left to turn the page into text")
    result = _extract(body, media_type, declared_charset, max_text_chars, max_html_chars)
    if deadline is not None and clock() >= deadline:
        raise ExtractionTimeout(_LATE)
    return result


def _extract(body: bytes, media_type: str, declared_charset: str | None,
             max_text_chars: int, max_html_chars: int) -> tuple[Extracted, bool]:
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
    if tree is None:  # lxml gave up (nesting past its depth limit), or a bare fragment
        plain = "<" not in text  # no markup at all: the "HTML" is text
        return Extracted(_tidy(text) if plain else _visible_text(text), html=text)
    _split_wide_rows(tree)
    tree = _merge_inline_runs(tree, trafilatura)
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


def _split_wide_rows(tree: Any) -> None:
    """Split table rows of more than ``MAX_ROW_CELLS`` cells into rows of that many, in
    place: same text, cell order kept, and trafilatura's time stays linear (one row of 45,000
    cells took it 7 s, 190,000 cells minutes)."""
    try:
        rows = [row for row in tree.iter("tr") if len(row) > MAX_ROW_CELLS]
    except Exception:
        return
    for row in rows:
        cells = [cell for cell in row if cell.tag in ("td", "th")]
        if len(cells) <= MAX_ROW_CELLS:
            continue
        anchor = row
        for start in range(MAX_ROW_CELLS, len(cells), MAX_ROW_CELLS):
            extra = row.makeelement("tr", {})
            for cell in cells[start:start + MAX_ROW_CELLS]:
                extra.append(cell)  # moves the cell (and its tail) out of the long row
            anchor.addnext(extra)
            anchor = extra


def _merge_inline_runs(tree: Any, trafilatura: Any) -> Any:
    """``tree``, or when some element has more than ``MAX_INLINE_RUN`` inline children, a
    tree with those unwrapped and their text merged into one text node (parsed again from the
    unwrapped markup: lxml cannot merge adjacent text nodes in place)."""
    etree: Any = importlib.import_module("lxml.etree")  # trafilatura's parser (no stubs)
    crowded = False
    try:
        for element in tree.iter():
            if len(element) > MAX_INLINE_RUN and sum(
                child.tag in _INLINE for child in element
            ) > MAX_INLINE_RUN:
                etree.strip_tags(element, *_INLINE)
                crowded = True
        if not crowded:
            return tree
        again = trafilatura.load_html(etree.tostring(tree, encoding="unicode", method="html"))
    except Exception:
        return tree
    return tree if again is None else again


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
        # What is left unparsed at the end is a construct never closed: a comment ('<!--'
        # runs to the end of the page in a browser), a tag, a script. html.parser's close()
        # would hand it over as text, markup and all; a browser shows none of it.
        if _MARKUP_START.match(parser.rawdata):
            parser.rawdata = ""
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


__all__ = [
    "Extracted", "ExtractionError", "ExtractionTimeout", "decode", "extract", "usable_codec",
]
