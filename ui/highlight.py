"""Query terms marked in passage text, and snippets: a window of a long passage around its matches.

Marks use the same analysis as BM25 (stemming, character n-grams for scripts without spaces), so what
is marked is what BM25 matched, stopwords excepted: `highlight_terms` leaves out the stopwords of the
query's language and of the passage's (`search.stopwords`), and a snippet is the window with the most
distinct query terms, so it shows the query's content rather than its "the" and "is". The text between
and inside the marks is escaped (`ui.html`).

A `Marks` analyses each passage once for one query's drawing, however many cards, snippets and full texts
show it (analysis was two thirds of drawing a column). It holds the passages' text, so it lives with that
drawing (the session's latest search keeps it, `ui.regions.session.LatestSearch`) and nothing here is cached
process-wide: no session's corpus or query outlives it or reaches another session.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from search import analysis
from search.types import Language, SearchResult

from .html import Markup, element, join

SNIPPET_CHARS = 320
# Clause punctuation of scripts without spaces: a good place to cut a snippet when there is no space.
_CLAUSE_ENDS = frozenset("。，、；：！？．…」』）")
# How far a cut may move to reach a space or clause end; beyond it, cut between characters (no-space text).
_MAX_SNAP = 24


Match = tuple[int, int, str]  # (start, end, term) of a token to mark


class Marks:
    """The marks of one query's drawing: the terms to mark per passage language, and each passage's matches,
    worked out once however often the drawing shows them (a passage is on the cards of several columns, and
    a card shows it twice: snippet and full text). Keep one per query and drop it with the drawing; it holds
    the passages' text. Safe to share between the threads drawing one session's columns (at worst a passage
    is analysed twice).

    >>> marks = Marks(); terms = frozenset({"run"})
    >>> marks.highlight("Dogs run", "en", terms), marks.analysed
    (Markup('Dogs <mark>run</mark>'), 1)
    >>> _ = marks.snippet("Dogs run", "en", terms); marks.analysed
    1
    """

    def __init__(self) -> None:
        self._matches: dict[tuple[str, str, frozenset[str]], tuple[Match, ...]] = {}
        self._terms: dict[tuple[str, Language, str, frozenset[str]], frozenset[str]] = {}
        self._standalone: dict[frozenset[str], frozenset[str]] = {}

    @property
    def analysed(self) -> int:
        """How many (passage, language, terms) were analysed: each once."""
        return len(self._matches)

    def terms(self, result: SearchResult, passage_language: str,
              corpus_languages: Iterable[str] = ()) -> frozenset[str]:
        """`highlight_terms` of `result` for a passage of `passage_language`, worked out once per language."""
        key = (result.query, result.query_language, passage_language, frozenset(corpus_languages))
        found = self._terms.get(key)
        if found is None:
            found = self._terms[key] = _highlight_terms(*key)
        return found

    def matches(self, text: str, language: str, terms: Iterable[str]) -> tuple[Match, ...]:
        """(start, end, term) of every token of `text` to mark for `terms`, in reading order (see
        `match_spans`); `text` is analysed once per language and terms."""
        wanted = frozenset(terms)
        if not wanted or not text:
            return ()
        key = (text, language, wanted)
        found = self._matches.get(key)
        if found is None:
            alone = self._standalone.get(wanted)
            if alone is None:
                alone = self._standalone[wanted] = _standalone_terms(wanted)
            found = self._matches[key] = _matches_of(text, language, wanted, alone)
        return found

    def match_spans(self, text: str, language: str, terms: Iterable[str]) -> list[tuple[int, int]]:
        """See the module's `match_spans`."""
        return _merge([(start, end) for start, end, _ in self.matches(text, language, terms)])

    def highlight(self, text: str, language: str, terms: Iterable[str]) -> Markup:
        """See the module's `highlight`."""
        return _marked_html(text, self.match_spans(text, language, terms), 0, len(text))

    def snippet(self, text: str, language: str, terms: Iterable[str], max_chars: int = SNIPPET_CHARS) -> Markup:
        """See the module's `snippet`."""
        if max_chars < 1:
            raise ValueError(f"max_chars={max_chars} must be at least 1")
        matches = self.matches(text, language, terms)
        spans = _merge([(start, end) for start, end, _ in matches])
        if len(text) <= max_chars:
            return _marked_html(text, spans, 0, len(text))
        start, end = _window(text, matches, max_chars)
        return join(("…" if start > 0 else None, _marked_html(text, spans, start, end),
                     "…" if end < len(text) else None))


def match_spans(text: str, language: str, terms: Iterable[str], marks: Marks | None = None) -> list[tuple[int, int]]:
    """Return the (start, end) character spans of `text` to mark for `terms`, sorted and merged.

    A span is a token of `analysis.tokenize(text, language)` whose term is in `terms` (`highlight_terms`
    leaves the stopwords out); overlapping and touching spans become one. In scripts written without
    spaces a single character only counts when the query has it alone: a query's characters all come
    as unigrams too, and marking every lone 的 or 是 would bury the runs that actually match. `marks`
    (one query's drawing) keeps the analysis for the next call; without it, nothing is kept.

    >>> match_spans("我爱长城和故宫", "zh", {"长", "长城", "城"})
    [(2, 4)]
    """
    return (marks or Marks()).match_spans(text, language, terms)


def _matches_of(text: str, language: str, wanted: frozenset[str], alone: frozenset[str]) -> tuple[Match, ...]:
    tokens = analysis.tokenize(text, language, stop_languages=())
    return tuple(
        (token.start, token.end, token.term)
        for i, token in enumerate(tokens)
        if token.term in wanted and (token.term in alone or not _inside_neighbour(tokens, i))
    )


def highlight(text: str, language: str, terms: Iterable[str], marks: Marks | None = None) -> Markup:
    """Return `text` as escaped HTML with every token whose term is in `terms` wrapped in ``<mark>``.

    `language` is the passage's language group (it picks the stemmer), `terms` the query's index terms,
    `marks` the drawing this is part of (see `Marks`).

    >>> highlight("Dogs <b>run</b>", "en", {"run"})
    Markup('Dogs &lt;b&gt;<mark>run</mark>&lt;/b&gt;')
    """
    return (marks or Marks()).highlight(text, language, terms)


def snippet(text: str, language: str, terms: Iterable[str], max_chars: int = SNIPPET_CHARS,
            marks: Marks | None = None) -> Markup:
    """Return highlighted, escaped HTML of `text`, or of a window of about `max_chars` characters of it.

    A text of at most `max_chars` characters is returned whole. Otherwise the window holds the most
    distinct query terms that fit (then the most matches; the earliest such window), with some context
    before; it is cut at whitespace or clause punctuation, or between characters in scripts without
    spaces, and "…" marks each cut end. `marks`: see `Marks`. Raises ValueError when max_chars < 1.
    """
    return (marks or Marks()).snippet(text, language, terms, max_chars)


def highlight_terms(result: SearchResult, passage_language: str,
                    corpus_languages: Iterable[str] = ()) -> frozenset[str]:
    """Return the terms to mark in a passage of `passage_language` for `result.query`.

    These are BM25's query terms (`search.analysis.query_terms`) plus the query analysed as the passage's
    language, so a stemmed match shows even when the query was analysed with another stemmer; the
    stopwords of the query's language and of the passage's are left out in every language.
    """
    return _highlight_terms(result.query, result.query_language, passage_language, frozenset(corpus_languages))


def _highlight_terms(query: str, query_language: Language, passage_language: str,
                     corpus_languages: frozenset[str]) -> frozenset[str]:
    by_language = analysis.query_terms(query, query_language.group, corpus_languages)
    return frozenset(term for terms in by_language.values() for term in terms) | frozenset(analysis.content_terms(
        query, passage_language, stop_languages=(passage_language, query_language.group)))


def _standalone_terms(terms: frozenset[str]) -> frozenset[str]:
    return frozenset(term for term in terms if not any(term != other and term in other for other in terms))


def _inside_neighbour(tokens: Sequence[analysis.Token], i: int) -> bool:
    # Only the unigrams of a run without spaces lie inside another token, and always inside a neighbour.
    token = tokens[i]
    for j in (i - 1, i + 1):
        if 0 <= j < len(tokens):
            other = tokens[j]
            if (other.start <= token.start and token.end <= other.end
                    and other.end - other.start > token.end - token.start):
                return True
    return False


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _marked_html(text: str, spans: Sequence[tuple[int, int]], lo: int, hi: int) -> Markup:
    pieces: list[str | Markup] = []
    position = lo
    for start, end in spans:
        start, end = max(start, lo), min(end, hi)
        if start >= end:
            continue
        pieces.append(text[position:start])
        pieces.append(element("mark", text[start:end]))
        position = end
    pieces.append(text[position:hi])
    return join(pieces)


def _window(text: str, matches: Sequence[tuple[int, int, str]], width: int) -> tuple[int, int]:
    first, last = _richest(matches, width)
    room = width - (last - first)
    lo = max(0, first - room // 3)
    hi = min(len(text), lo + width)
    lo = max(0, hi - width)
    if lo > 0:
        lo = _snap_start(text, lo, first)
    if hi < len(text):
        hi = _snap_end(text, hi, max(last, lo))
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    return lo, hi


def _richest(matches: Sequence[tuple[int, int, str]], width: int) -> tuple[int, int]:
    # The (start, end) of the run of matches within `width` characters that has the most distinct terms,
    # then the most matches; the earliest such run.
    best, best_key = (0, 0), (0, 0)
    for i, (start, end, term) in enumerate(matches):
        last, seen, count = min(end, start + width), {term}, 1
        for _, other_end, other_term in matches[i + 1:]:
            if other_end > start + width:
                break
            last, count = other_end, count + 1
            seen.add(other_term)
        if (len(seen), count) > best_key:
            best, best_key = (start, last), (len(seen), count)
    return best


def _snap_start(text: str, lo: int, limit: int) -> int:
    if text[lo - 1].isspace() or text[lo - 1] in _CLAUSE_ENDS:
        return lo
    for position in range(lo, min(limit, lo + _MAX_SNAP)):
        if text[position].isspace():
            return position
        if text[position] in _CLAUSE_ENDS:
            return position + 1
    while lo < limit and _is_mark(text[lo]):  # keep vowel signs and joiners with their base letter
        lo += 1
    return lo


def _snap_end(text: str, hi: int, limit: int) -> int:
    if text[hi].isspace():
        return hi
    for position in range(hi - 1, max(limit, hi - _MAX_SNAP) - 1, -1):
        if text[position].isspace():
            return position
        if text[position] in _CLAUSE_ENDS:
            return position + 1
    while hi > limit and _is_mark(text[hi]):
        hi -= 1
    return hi


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M") or char in "\u200c\u200d"
