"""Splitting documents into overlapping passages of about `window` words, the unit every stage ranks.

The unit is an approximate word: a run of non-space characters in scripts written with spaces, and
one character (a whole grapheme) in scripts written without them (Chinese, Japanese, Thai, Lao,
Khmer, Myanmar, Tibetan), where a character carries about as much as a short word.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from itertools import accumulate
from typing import NamedTuple

import regex

from search.types import Document, Passage

# 200 words make about 260 XLM-R/BERT subword tokens in English and up to ~400 in heavily
# inflected or non-Latin languages (one CJK character is at most one token), so a passage plus a
# query of up to ~100 tokens and the 3-4 special tokens fits a 512-token cross-encoder window.
# 40 words of overlap (a sentence or two) keeps an answer that straddles a boundary whole in one passage.
DEFAULT_WINDOW = 200
DEFAULT_OVERLAP = 40
MIN_WINDOW = 16
MAX_WINDOW = 4096

_NO_SPACE_SCRIPTS = ("Han", "Hiragana", "Katakana", "Thai", "Lao", "Khmer", "Myanmar", "Tibetan")
_NO_SPACE = "".join(rf"\p{{Script={script}}}" for script in _NO_SPACE_SCRIPTS)
_NO_SPACE_CHAR = regex.compile(f"[{_NO_SPACE}]")
# Splitting on a capturing unit pattern gives [space, unit, space, unit, ..., space], all in C.
_MIXED_UNITS = regex.compile(rf"((?=[{_NO_SPACE}])\X|[^\s{_NO_SPACE}]+)")
_WORD_UNITS = re.compile(r"(\S+)")  # the fast path for the common case of no such script

_SENTENCE_ENDS = frozenset(".!?。！？।॥؟۔…")
_CLOSERS = "\"')]}»”’」』）】〕›"
# A window may end at a sentence end within its last quarter; earlier, it ends at the full window.
_SENTENCE_SEARCH = 4


class TooManyPassages(ValueError):
    """The documents make more passages than allowed: `passages` in all (counted, not kept), `limit`."""

    def __init__(self, passages: int, limit: int, documents: int) -> None:
        super().__init__(f"the {documents:,} documents make {passages:,} passages, more than max_passages={limit:,}")
        self.passages = passages
        self.limit = limit
        self.documents = documents


def split_documents(
    documents: Sequence[Document], *, window: int = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP,
    max_passages: int | None = None,
) -> tuple[Passage, ...]:
    """All documents' passages, in document order; see `split_document`.

    With `max_passages`, passages past it are counted but not kept, and `TooManyPassages` (a ValueError
    carrying the count) is raised at the end: a corpus of millions of passages is refused in the memory of
    one document's passages. Raises ValueError for a `window` or `overlap` out of range, or two documents
    sharing a doc_id (their passage ids would collide).
    """
    _check_window(window, overlap)
    seen: set[str] = set()
    for document in documents:
        if document.doc_id in seen:
            raise ValueError(f"doc_id {document.doc_id!r} appears twice; passage ids need unique doc ids")
        seen.add(document.doc_id)
    passages: list[Passage] = []
    count = 0
    for document in documents:
        for passage in _split(document, window, overlap):
            count += 1
            if max_passages is None or count <= max_passages:
                passages.append(passage)
    if max_passages is not None and count > max_passages:
        raise TooManyPassages(count, max_passages, len(documents))
    return tuple(passages)


class SourceCount(NamedTuple):
    """How much one source file contributes: its passages and documents."""

    source: str
    passages: int
    documents: int


def passages_per_source(passages: Iterable[Passage]) -> tuple[SourceCount, ...]:
    """Passages and documents per source file, the largest contributors first (ties by source).

    A file of junk that became hundreds of passages shows at the top, before its embedding costs minutes.

    >>> passages_per_source([Passage("a#0", "a", 0, "x", source="a.txt"), Passage("a#1", "a", 1, "y", source="a.txt"),
    ...                      Passage("b#0", "b", 0, "z", source="b.txt")])
    (SourceCount(source='a.txt', passages=2, documents=1), SourceCount(source='b.txt', passages=1, documents=1))
    """
    counts: Counter[str] = Counter()
    documents: dict[str, set[str]] = {}
    for passage in passages:
        counts[passage.source] += 1
        documents.setdefault(passage.source, set()).add(passage.doc_id)
    return tuple(SourceCount(source, count, len(documents[source]))
                 for source, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def split_document(
    document: Document, window: int = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP
) -> tuple[Passage, ...]:
    """The document's passages of at most `window` units, each starting `overlap` units before the last one ended.

    A window ends at the latest sentence end (. ! ? 。 ！ ？ । ؟ ۔ or a line break) in its last quarter,
    else after exactly `window` units; units are never cut. A document of at most `window` units is
    one passage; an empty one has none. Each passage's text is ``document.text[start:end]``, stripped.
    Raises ValueError when `window` is not in 16..4096 or `overlap` not in 0..window // 2 - 1.

    >>> [p.passage_id for p in split_document(Document("x", "A short text."))]
    ['x#0']
    """
    _check_window(window, overlap)
    return tuple(_split(document, window, overlap))


def _check_window(window: int, overlap: int) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or not MIN_WINDOW <= window <= MAX_WINDOW:
        raise ValueError(
            f"window={window!r} is out of range; use a whole number of units from {MIN_WINDOW} to {MAX_WINDOW}"
        )
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < window // 2:
        raise ValueError(
            f"overlap={overlap!r} is out of range for window={window}; "
            f"use a whole number from 0 to {window // 2 - 1} (less than half the window)"
        )


def _split(document: Document, window: int, overlap: int) -> Iterator[Passage]:
    text = document.text
    parts = (_MIXED_UNITS if _has_no_space_script(text) else _WORD_UNITS).split(text)
    units = len(parts) // 2
    if units == 0:
        return
    # Unit k is parts[2k + 1] and spans text[offsets[2k]:offsets[2k + 1]]; parts[2k + 2] is the space after it.
    offsets = list(accumulate(map(len, parts)))
    index = 0
    first = 0
    while True:
        limit = first + window
        end = units if limit >= units else _window_end(parts, limit, window)
        passage = _passage(document, index, offsets[2 * first], offsets[2 * end - 1])
        if passage is not None:
            yield passage
            index += 1
        if end == units:
            return
        first = end - overlap


def _window_end(parts: list[str], limit: int, window: int) -> int:
    """The unit index (exclusive) where a window ending at most at `limit` should stop."""
    for end in range(limit, limit - window // _SENTENCE_SEARCH - 1, -1):
        last_unit, space_after = parts[2 * end - 1], parts[2 * end]
        tail = last_unit.rstrip(_CLOSERS)
        if "\n" in space_after or (tail and tail[-1] in _SENTENCE_ENDS):
            return end
    return limit


def _passage(document: Document, index: int, start: int, end: int) -> Passage | None:
    piece = document.text[start:end]
    text = piece.strip()
    if not text:
        return None
    start += len(piece) - len(piece.lstrip())
    return Passage(
        passage_id=f"{document.doc_id}#{index}",
        doc_id=document.doc_id,
        index=index,
        text=text,
        title=document.title,
        source=document.source,
        start=start,
        end=start + len(text),
    )


def _has_no_space_script(text: str) -> bool:
    if text.isascii():
        return False
    if _no_space_bmp_char().search(text):
        return True
    return _ASTRAL_CHAR.search(text) is not None and _NO_SPACE_CHAR.search(text) is not None


_ASTRAL_CHAR = re.compile("[\U00010000-\U0010ffff]")


@cache
def _no_space_bmp_char() -> re.Pattern[str]:
    """`_NO_SPACE_CHAR` below U+10000 as a stdlib character class: a table lookup, ~10x faster to search."""
    every_char = "".join(map(chr, range(0x80, 0x10000)))
    ranges: list[list[int]] = []
    for match in _NO_SPACE_CHAR.finditer(every_char):
        point = ord(match.group())
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    return re.compile("[" + "".join(f"{re.escape(chr(low))}-{re.escape(chr(high))}" for low, high in ranges) + "]")
