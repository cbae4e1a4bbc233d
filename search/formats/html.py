"""HTML: the text a browser would show, with line breaks at block elements, and the page's <title>.

The markup is read by a small tokenizer written for this, in time linear in the page: every search
moves forward and nothing is retried. The standard library's `html.parser` rescans an unterminated tag
or comment each time more text arrives, which takes minutes on ``x<a <a <a ...`` or ``<!--<!--...``;
here an unterminated tag, comment or declaration ends the page at EOF, as the HTML standard says.
Script and style contents are skipped as raw text; title and textarea contents are text, never markup.
Character references are decoded, numeric ones of any length without converting huge numbers.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from functools import lru_cache

from ..decoding import usable_charset
from ..limits import FileBudget
from ..types import Problem
from .base import FileContext, Parsed, Record
from .html_charset import declared_encoding

_TAG_NAME = re.compile(r"[a-zA-Z][^\t\n\r\f />\x00]*")
# Text, and tags without quotes, in one match each; anything else goes the careful way. No branch can
# run past the next "<", quote or ">", so a failed match costs no more than the text it looked at.
# Possessive (*+): the name and the attributes overlap, so a backtracking split of a long unclosed
# "<bxxxx..." between them would be quadratic.
_COMMON = re.compile(r"(?P<text>[^<]++)|<(?P<open>[a-zA-Z][^\t\n\r\f />\x00]*+)[^\"'<>]*+>"
                     r"|</(?P<close>[a-zA-Z][^\t\n\r\f />\x00]*+)[^\"'<>]*+>")
_SPACES = re.compile(r"\s+")
_QUOTE_OR_END = re.compile(r"[\"'>]")
# A numeric character reference of more than 8 significant digits: past U+10FFFF whatever it says.
_LONG_REFERENCE = re.compile(r"&#(?:[xX]0*+[0-9a-fA-F]{9,}|0*+[0-9]{9,});?")
_RAW_TEXT = frozenset({"script", "style"})  # contents are never markup and never shown
_TEXT_ONLY = frozenset({"title", "textarea"})  # contents are text (references decoded), never markup
_CHECK_EVERY = 2000


def parse_html(data: bytes, context: FileContext) -> Parsed:
    """A page's visible text and title; its encoding as browsers find it: a byte-order mark, else the
    ``<meta>`` charset (`search.formats.html_charset`), else the bytes (see `search.decoding`)."""
    declared = declared_encoding(data)
    codec = None
    if declared is not None:
        label = declared.label[:64]
        if declared.codec is not None:
            codec = declared.codec
            if declared.encoding.startswith("UTF-16"):
                yield Problem(context.source, f"declares charset {label!r}, which browsers read as UTF-8 in a page "
                                              "(WHATWG)", skipped=False)
        elif declared.encoding:
            yield Problem(context.source, f"declares charset {label!r}, which browsers refuse to decode; the "
                                          "encoding is detected instead", skipped=False)
        elif usable_charset(label) is None:
            codec = label  # decoding says it is unusable
        else:
            yield Problem(context.source, f"declares charset {label!r}, which is not a label browsers know "
                                          "(WHATWG); the encoding is detected instead", skipped=False)
    decoded = context.decode(data, codec)
    yield from decoded.problems
    if decoded.text is None:
        return
    body, title = visible_text(decoded.text, context.budget)
    if not body:
        yield Problem(context.source, "no visible text in this HTML page")
        return
    yield Record(context.stem, body, title)


def visible_text(page: str, budget: FileBudget | None = None) -> tuple[str, str]:
    """(the text a browser shows, the first <title>) of an HTML page; `budget` is checked as it goes.

    >>> visible_text("<title>T</title><p>One<br>two</p><script>x()</script>")
    ('One\\ntwo', 'T')
    """
    visitor = _VisibleText()
    _tokenize(page, visitor, budget)
    return visitor.text(), visitor.title()


def _tokenize(page: str, visitor: _VisibleText, budget: FileBudget | None) -> None:
    position, length, steps = 0, len(page), 0
    while position < length:
        steps += 1
        if budget is not None and steps % _CHECK_EVERY == 0:
            budget.check()
        common = _COMMON.match(page, position)
        if common is not None:
            position = common.end()
            text, opened, closed = common.group("text", "open", "close")
            if text is not None:
                visitor.data(_unescape(text))
            elif closed is not None:
                visitor.end(closed.lower())
            else:
                position = _started(page, opened.lower(), position, visitor)
            continue
        # The rare constructs: comments, declarations, quoted attributes, a "<" that opens nothing.
        after = page[position + 1 : position + 2]
        if after == "!":
            position = _skip_declaration(page, position)
            continue
        if after == "?":
            position = _past(page, ">", position + 2)  # a processing instruction: a bogus comment
            continue
        closing = after == "/"
        name = _TAG_NAME.match(page, position + (2 if closing else 1))
        if name is None:
            if closing:  # "</>" is dropped; "</3" and the like are bogus comments
                position = _past(page, ">", position + 2)
            else:
                visitor.data("<")
                position += 1
            continue
        end = _tag_end(page, name.end())
        if end is None:
            return  # a tag still open at the end of the page: the standard drops it
        if closing:
            visitor.end(name.group().lower())
            position = end
        else:
            position = _started(page, name.group().lower(), end, visitor)


def _started(page: str, tag: str, end: int, visitor: _VisibleText) -> int:
    """Report a start tag that ends just before `end`; return where reading goes on (past raw text)."""
    visitor.start(tag)
    if page[end - 2] == "/":
        visitor.end(tag)  # <br/>: as html.parser did, a self-closing tag starts and ends
        return end
    if tag not in _RAW_TEXT and tag not in _TEXT_ONLY:
        return end
    close = _end_tag(tag).search(page, end)
    content_end = len(page) if close is None else close.start()
    if tag in _TEXT_ONLY:
        visitor.data(_unescape(page[end:content_end]))
    visitor.end(tag)
    return len(page) if close is None else (_tag_end(page, close.end()) or len(page))


def _skip_declaration(page: str, opening: int) -> int:
    """Past a comment (``<!-- -->``, unterminated: to the end) or a doctype/CDATA section (to ``>``)."""
    if page.startswith("<!--", opening):
        if page.startswith(">", opening + 4):
            return opening + 5  # "<!-->" is an empty comment
        if page.startswith("->", opening + 4):
            return opening + 6  # so is "<!--->"
        return _past(page, "-->", opening + 4)
    return _past(page, ">", opening + 2)


def _past(page: str, marker: str, start: int) -> int:
    found = page.find(marker, start)
    return len(page) if found == -1 else found + len(marker)


def _tag_end(page: str, position: int) -> int | None:
    """The index just past the ``>`` that ends a tag whose attributes start at `position`, or None when the
    page ends first. A quote opens a value only after ``=``; such a value may hold ``>``."""
    while True:
        found = _QUOTE_OR_END.search(page, position)
        if found is None:
            return None
        if found.group() == ">":
            return found.end()
        if page[position : found.start()].rstrip().endswith("="):
            close = page.find(found.group(), found.end())
            if close == -1:
                return None
            position = close + 1
        else:
            position = found.end()


@lru_cache(maxsize=8)
def _end_tag(tag: str) -> re.Pattern[str]:
    return re.compile(rf"</{tag}(?=[\t\n\r\f />])", re.IGNORECASE)


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    # html.unescape converts numeric references with int(), which refuses over 4,300 digits; any
    # reference past U+10FFFF is U+FFFD anyway, so long ones are replaced before it sees them.
    return html.unescape(_LONG_REFERENCE.sub("\ufffd", text))


class _VisibleText:
    """Collects the text a browser would show, with line breaks at block elements, and the <title>."""

    HIDDEN = frozenset({"script", "style", "noscript", "template"})
    HEAD_ONLY = frozenset({"meta", "link", "title", "base", "style", "script", "noscript", "template"})
    PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl"})
    BLOCK = frozenset(
        {
            "address", "article", "aside", "body", "br", "dd", "details", "div", "dt", "figcaption", "figure",
            "footer", "form", "header", "hr", "li", "main", "nav", "section", "summary", "tr", "caption",
        }
    )  # fmt: skip

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._title: list[str] = []
        self._hidden: Counter[str] = Counter()
        self._hiding = 0  # open hidden elements, all tags together
        self._in_head = False
        self._in_title = False
        self._pre = 0

    def start(self, tag: str) -> None:
        if tag == "head":
            self._in_head = True
        elif self._in_head and tag not in self.HEAD_ONLY:
            self._in_head = False  # a body element implicitly closes an unclosed <head>
        if tag == "title":
            self._in_title = not self._title  # only the first: an inline <svg> may hold titles of its own
        elif tag in self.HIDDEN:
            self._hidden[tag] += 1
            self._hiding += 1
        elif tag == "pre":
            self._pre += 1
        self._break(tag)
        if tag in ("td", "th"):
            self._chunks.append(" ")

    def end(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        elif tag == "title":
            self._in_title = False
        elif tag in self.HIDDEN and self._hidden[tag]:
            self._hidden[tag] -= 1
            self._hiding -= 1
        elif tag == "pre" and self._pre:
            self._pre -= 1
        self._break(tag)

    def data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        elif not self._in_head and not self._hiding:
            self._chunks.append(data if self._pre else _SPACES.sub(" ", data))

    def _break(self, tag: str) -> None:
        if tag in self.PARAGRAPH:
            self._chunks.append("\n\n")
        elif tag in self.BLOCK:
            self._chunks.append("\n")

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self._chunks).split("\n"))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

    def title(self) -> str:
        return " ".join("".join(self._title).split())
