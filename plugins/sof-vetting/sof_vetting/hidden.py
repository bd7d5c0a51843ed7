"""Text a browser would not show: the classic hiding place for instructions aimed at models.

A page can carry "ignore your instructions" in an element styled ``display:none``, in white
text on a white background, at ``font-size:0``, pushed off-screen, or in an HTML comment; a
text extractor may keep it and a model will read it. ``hidden_segments(html)`` walks the
HTML with the standard library's tolerant parser and returns each such text with the reason
it is invisible. Rules in ``<style>`` blocks are honoured for simple selectors (``.class``,
``#id``, ``tag``, ``tag.class``); inline ``style`` attributes and the ``hidden`` attribute
always are. Text colour is inherited and a background shows through the elements inside
it, so white text under a white ``body`` set in a style block is caught; a colour or
background the page does not declare (a browser's default, an external stylesheet) is
never guessed, so a dark theme we cannot see never hides its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from sof_vetting.detectors.injection import ROLE_TAGS

VOID = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()
)
#: Elements that start a new line of text.
_BLOCKS = frozenset(
    "p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article header footer nav "
    "blockquote pre title main aside dd dt figcaption".split()
)
#: Elements whose content is never page text.
SKIP = frozenset({"script", "style"})

_DECL = re.compile(r"([a-zA-Z-]+)\s*:\s*([^;]+)")
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_ZERO = re.compile(r"^-?0*\.?0+(px|em|rem|pt|%|vh|vw)?$")
_FAR = re.compile(r"^-\d{3,}(\.\d+)?(px|em|rem|pt|vw|vh)?$")
_TINY = re.compile(r"^0*\.?\d+(px|pt)?$")
_WHITE = {"#fff", "#ffffff", "white", "rgb(255,255,255)", "#fefefe"}


@dataclass(frozen=True)
class HiddenSegment:
    text: str
    #: Why it is invisible: "display:none", "font-size:0", "same colour as background",
    #: "html comment", "hidden attribute", ...
    reason: str


_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_RECT = re.compile(r"^rect\(([^)]*)\)$")
_SCALE_ZERO = re.compile(r"^scale[xy]?\((?:0(?:\.0*)?)(?:,[^)]*)?\)$")
_HSL_WHITE = re.compile(r"^hsla?\([^,]+,[^,]+,100(?:\.0*)?%(?:,[^)]*)?\)$")


def _white(colour: str) -> bool:
    return colour in _WHITE or _HSL_WHITE.match(colour) is not None


_SAME_COLOUR = "same colour as background"
_BLACK = {"#000", "#000000", "black", "rgb(0,0,0)"}
_PLAIN_COLOUR = re.compile(r"^(#[0-9a-f]{3,8}|[a-z]+|(rgb|hsl)a?\([0-9.,%]+\))$")


def _same_colour(colour: str, background: str) -> bool:
    return colour == background or (_white(colour) and _white(background)) or (
        colour in _BLACK and background in _BLACK)


def _paint(decls: dict[str, str]) -> tuple[str | None, str | None]:
    """The text colour and the background colour a declaration block sets (compacted), or
    None for either it leaves alone. A background that is not one plain colour (an image, a
    gradient) is ``""``: what shows behind the text is then unknown."""
    colour = decls.get("color")
    background = decls.get("background-color", decls.get("background"))
    if background is not None and not _PLAIN_COLOUR.match(background):
        background = ""
    if colour in ("inherit", "currentcolor"):
        colour = None
    if background in ("inherit", "transparent", "rgba(0,0,0,0)", "none"):
        background = None
    return colour, background


def _parsed(style: str) -> tuple[dict[str, str], dict[str, str]]:
    """A declaration block's properties, lower-cased and without ``!important``: as
    written, and without spaces (what the checks compare)."""
    style = _COMMENT.sub("", style)  # display:/*x*/none is display:none to a browser
    decls = {k.strip().lower(): v.strip().lower().replace(" !important", "")
             for k, v in _DECL.findall(style)}
    return decls, {k: v.replace(" ", "") for k, v in decls.items()}


def _clipped(value: str | None) -> bool:
    """``clip: rect(...)`` leaving at most a pixel square (``rect(0 0 0 0)``, the
    ``rect(1px,1px,1px,1px)`` of visually-hidden helpers), commas or spaces."""
    found = _RECT.match(value or "")
    if found is None:
        return False
    sides = [p for p in re.split(r"[,\s]+", found.group(1)) if p]
    return len(sides) == 4 and all(re.fullmatch(r"[01](?:\.0*)?(?:px)?", p) for p in sides)


def style_hides(style: str) -> str | None:
    """Why a CSS declaration block makes its element invisible, or None."""
    return _hides(*_parsed(style))


def _hides(decls: dict[str, str], compact: dict[str, str]) -> str | None:
    """``style_hides`` of a block ``_parsed`` already."""
    if compact.get("display") == "none":
        return "display:none"
    if compact.get("visibility") in ("hidden", "collapse"):
        return f"visibility:{compact['visibility']}"
    opacity = compact.get("opacity")
    if opacity is not None and _ZERO.match(opacity):
        return "opacity:0"
    size = compact.get("font-size")
    if size is not None and (_ZERO.match(size) or (_TINY.match(size) and _px(size) < 2)):
        return f"font-size:{size}"
    colour = compact.get("color")
    if colour in ("transparent", "rgba(0,0,0,0)"):
        return "transparent text"
    background = compact.get("background-color") or compact.get("background")
    if colour and background and _same_colour(colour, background):
        return _SAME_COLOUR
    for side in ("left", "top", "right", "text-indent", "margin-left"):
        value = compact.get(side)
        if value is not None and _FAR.match(value):
            return f"{side}:{value} (off-screen)"
    if _clipped(decls.get("clip")) or compact.get("clip-path") in ("inset(100%)",
                                                                   "inset(50%)"):
        return "clipped away"
    if _SCALE_ZERO.match(compact.get("transform", "")):
        return f"transform:{compact['transform']}"
    for box in ("height", "width", "max-height", "max-width"):
        value = compact.get(box)
        if value is not None and _ZERO.match(value) and compact.get("overflow") == "hidden":
            return f"{box}:0 with overflow:hidden"
    return None


def _px(size: str) -> float:
    try:
        return float(re.sub(r"[a-z%]+$", "", size))
    except ValueError:
        return 99.0


#: A text colour and a background colour, each None where nothing set one ("" for a
#: background that is not a plain colour).
Paint = tuple[str | None, str | None]


class _Walker(HTMLParser):
    def __init__(self, rules: dict[str, str], paints: dict[str, Paint]) -> None:
        super().__init__(convert_charrefs=True)
        self.rules = rules
        self.paints = paints
        #: (tag, reason it hides or None, skip content)
        self.stack: list[tuple[str, str | None, bool]] = []
        #: The colour and background in force inside each element of ``stack``.
        self.painted: list[Paint] = []
        self.segments: list[HiddenSegment] = []
        self._buffer: list[str] = []
        self._reason: str | None = None
        #: Text a browser shows (outside hidden elements, scripts and styles).
        self.visible: list[str] = []
        #: The ``ROLE_TAGS`` elements found, in order, each once.
        self.role_tags: list[str] = []

    def _hidden_reason(self) -> str | None:
        colour, background = self.painted[-1] if self.painted else (None, None)
        same = bool(colour and background and _same_colour(colour, background))
        for _, reason, _skip in reversed(self.stack):
            # an element inside one painted the colour of its background, that sets a
            # colour or background of its own, is seen again
            if reason and (same or not reason.startswith(_SAME_COLOUR)):
                return reason
        return f"{_SAME_COLOUR} (inherited)" if same else None

    def _flush(self) -> None:
        text = " ".join("".join(self._buffer).split())
        if text and self._reason:
            self.segments.append(HiddenSegment(text, self._reason))
        self._buffer = []
        self._reason = None

    def _role_tag(self, tag: str) -> None:
        """Role tags (``<system>``...) are elements no real page has: reading the page as a
        browser shows it drops the tag and keeps the text it marks as a system message."""
        if tag in ROLE_TAGS and tag not in self.role_tags and not any(
                skip for _, _, skip in self.stack):
            self.role_tags.append(tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._role_tag(tag)
        if tag in _BLOCKS or tag == "br":
            self.visible.append("\n")
        values = {k.lower(): (v or "") for k, v in attrs}
        # Parsed once, for what hides the element and for the colours inside it.
        keys = _selectors(tag, values) if self.rules or self.paints else []
        style = _parsed(values.get("style", ""))
        reason: str | None = None
        if "hidden" in values:
            reason = "hidden attribute"
        elif tag == "template":
            reason = "template element"
        elif tag == "input" and values.get("type", "").lower() == "hidden":
            if values.get("value", "").strip():
                self._flush()
                self.segments.append(HiddenSegment(values["value"].strip(), "hidden input"))
        else:
            reason = _hides(*style) or self._rule_reason(keys)
        if tag in VOID:
            return
        self.stack.append((tag, reason, tag in SKIP))
        self.painted.append(self._paint_of(keys, style[1]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()
            self.painted.pop()

    def _paint_of(self, keys: list[str], style: dict[str, str]) -> Paint:
        """The colour and background inside this element: its own (rules by specificity,
        ``keys`` its selectors, then its ``style``), else its parent's (colour is
        inherited; a background shows through the elements inside it)."""
        colour, background = self.painted[-1] if self.painted else (None, None)
        sets = [self.paints[k] for k in keys if k in self.paints]
        sets.append(_paint(style))
        for own_colour, own_background in sets:
            colour = own_colour if own_colour is not None else colour
            background = own_background if own_background is not None else background
        return colour, background

    def _rule_reason(self, keys: list[str]) -> str | None:
        for key in keys:
            reason = self.rules.get(key)
            if reason:
                return f"{reason} (style rule {key})"
        return None

    def handle_endtag(self, tag: str) -> None:
        self._role_tag(tag)
        if tag in _BLOCKS:
            self.visible.append("\n")
        if not any(t == tag for t, _, _ in self.stack):
            return
        while self.stack:
            popped, _, _ = self.stack.pop()
            self.painted.pop()
            if popped == tag:
                break
        if self._hidden_reason() is None:
            self._flush()

    def handle_data(self, data: str) -> None:
        if any(skip for _, _, skip in self.stack):
            return
        reason = self._hidden_reason()
        if reason is None:
            self._flush()
            self.visible.append(data)
            return
        if self._reason is not None and self._reason != reason:
            self._flush()
        self._reason = reason
        self._buffer.append(data)

    def handle_comment(self, data: str) -> None:
        text = " ".join(data.split())
        if text:
            self._flush()
            self.segments.append(HiddenSegment(text, "html comment"))

    def close(self) -> None:
        super().close()
        self._flush()


def _selectors(tag: str, values: dict[str, str]) -> list[str]:
    """The simple selectors that match an element, least specific first."""
    classes = values.get("class", "").lower().split()
    keys = [tag, *(f".{c}" for c in classes), *(f"{tag}.{c}" for c in classes)]
    if values.get("id"):
        keys += [f"#{values['id'].lower()}", f"{tag}#{values['id'].lower()}"]
    return keys


def _style_rules(html: str) -> tuple[dict[str, str], dict[str, Paint]]:
    """Simple selectors in ``<style>`` blocks: those whose declarations hide, with the
    reason, and the colour and background each sets (a later rule over an earlier one)."""
    rules: dict[str, str] = {}
    paints: dict[str, Paint] = {}
    for block in re.findall(r"<style[^>]*>(.*?)</style>", html, re.IGNORECASE | re.DOTALL):
        for selectors, body in _RULE.findall(block):
            decls, compact = _parsed(body)
            reason = _hides(decls, compact)
            paint = _paint(compact)
            for selector in selectors.split(","):
                selector = selector.strip().lower()
                if not (selector and re.fullmatch(r"[a-z0-9]*([.#][\w-]+)?", selector)):
                    continue
                if reason:
                    rules[selector] = reason
                if paint != (None, None):
                    before = paints.get(selector, (None, None))
                    paints[selector] = (paint[0] if paint[0] is not None else before[0],
                                        paint[1] if paint[1] is not None else before[1])
    return rules, paints


@dataclass(frozen=True)
class ReadHTML:
    """What ``read_html`` found in a page."""

    visible: str  # what a browser shows (paragraphs on their own lines)
    hidden: list[HiddenSegment]  # every piece of text it hides, with the reason
    role_tags: list[str]  # ``ROLE_TAGS`` elements, which a browser drops with their tag


def read_html(html: str) -> ReadHTML:
    """Read ``html`` as a browser shows it, noting what it hides and its fake role tags."""
    walker = _Walker(*_style_rules(html))
    try:
        walker.feed(html)
        walker.close()
    except Exception:  # html.parser is tolerant; anything else is a parser bug: keep what we have
        walker._flush()
    lines = ("".join(walker.visible)).split("\n")
    visible = "\n".join(" ".join(line.split()) for line in lines if line.strip())
    return ReadHTML(visible, walker.segments, walker.role_tags)


def inspect_html(html: str) -> tuple[str, list[HiddenSegment]]:
    """What a browser shows of ``html`` (paragraphs on their own lines), and every piece of
    text it hides, with the reason."""
    read = read_html(html)
    return read.visible, read.hidden


def hidden_segments(html: str) -> list[HiddenSegment]:
    """Every piece of text in ``html`` a browser would not display, with the reason."""
    return inspect_html(html)[1]


def looks_like_html(text: str) -> bool:
    """Whether ``text`` is (mostly) markup rather than extracted prose."""
    head = text[:2048].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")):
        return True
    return len(re.findall(r"</?[a-z][a-z0-9]*[\s>/]", text[:20000], re.IGNORECASE)) >= 3


__all__ = ["ROLE_TAGS", "HiddenSegment", "ReadHTML", "hidden_segments", "inspect_html",
           "looks_like_html", "read_html", "style_hides"]
