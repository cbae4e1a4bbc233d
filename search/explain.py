"""Why did a passage score so: the passage scored again with each sentence left out in turn.

- `split_passage`: a passage's sentences (`split_sentences`), or fixed windows of words, or of characters
  in scripts written without spaces (`split_windows`), for text without sentence punctuation.
- `passage_without`: the passage with one part left out, as it is sent to the reranker.
- `explain_cost`: what explaining will cost, before running it: the pairs not yet in the score cache and
  the expected time at the reranker's measured speed (`inference.Throughput`).
- `explain`: an `Explanation`: the full score and, per part, its character span, the score without it and
  the drop (full score minus score without; positive: the part helped the passage's score).

Every pair goes through the reranker's `score`, so a `score_cache.CachedReranker` (what
`search.loading.load_reranker` returns) answers pairs it scored before from its cache, and the full
passage of a reranked card costs nothing again.

>>> [part.text for part in split_passage("Tea grows on hills. Bees make honey!").parts]
['Tea grows on hills.', 'Bees make honey!']
>>> passage_without("Tea grows on hills. Bees make honey! Owls hunt.", Part(20, 36, "Bees make honey!"))
'Tea grows on hills. Owls hunt.'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import regex

from .inference import PairScore, ProgressFn, Reranker, StopFn
from .score_cache import measured

SplitKind = Literal["sentence", "window"]

# Sentence ends that need a space (or the end of the text) after them, so "3.14" and "e.g.x" stay whole.
_SPACED_ENDS = ".!?…‼⁇⁈⁉"
# Sentence ends of scripts that end a sentence whatever follows: CJK full stops and marks, the Devanagari
# danda and double danda, Arabic and Urdu marks, Ethiopic, Armenian and Myanmar full stops, Tibetan shad.
_ENDS = "。！？｡．।॥؟۔።։။།"
_CLOSERS = "\"')]}»”’」』）】〕›"
_SENTENCE_END = regex.compile(
    rf"(?:[{regex.escape(_ENDS)}]+|[{regex.escape(_SPACED_ENDS)}]+(?=[{regex.escape(_CLOSERS)}]*(?:\s|\Z)))"
    rf"[{regex.escape(_CLOSERS)}]*"
    r"|\n[^\S\n]*\n"  # a blank line ends a paragraph (and a title line) with or without punctuation
)
# Abbreviations whose full stop ends no sentence ("Dr. Smith met Mr. Jones." is one sentence): English,
# German, French and Spanish titles and Latin or German short forms. Matched whole, any letter case.
_ABBREVIATIONS = ("Dr", "Mr", "Mrs", "Ms", "Prof", "St", "Jr", "Sr", "Sra", "Srta", "Dra", "Mme", "Mlle",
                  "Nr", "vs", "etc", "e.g", "i.e", "z.B", "d.h", "bzw", "cf", "ca")
_ABBREVIATION = regex.compile(
    rf"(?:^|[^\w.])(?:{'|'.join(regex.escape(word) for word in _ABBREVIATIONS)})\Z", regex.IGNORECASE)
_ABBREVIATION_REACH = max(map(len, _ABBREVIATIONS)) + 1
_NO_SPACE_SCRIPTS = ("Han", "Hiragana", "Katakana", "Hangul", "Thai", "Lao", "Khmer", "Myanmar", "Tibetan")
_NO_SPACE = "".join(rf"\p{{Script={script}}}" for script in _NO_SPACE_SCRIPTS)
# A window's unit: one grapheme of a script written without spaces, or a run of other non-space characters.
_UNIT = regex.compile(rf"(?=[{_NO_SPACE}])\X|[^\s{_NO_SPACE}]+")

DEFAULT_WINDOW_UNITS = 12
"""Words (or characters, in scripts written without spaces) per window when a passage has no sentences."""
MAX_WINDOWS = 24
"""Windows grow past DEFAULT_WINDOW_UNITS so that a long passage without sentences costs at most this many;
a passage with more sentences than this is cut into this many runs of adjacent sentences."""


@dataclass(frozen=True)
class Part:
    """A sentence or a window of a passage: `text` is ``passage[start:end]`` (no surrounding whitespace)."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Split:
    """A passage's parts, in order, and whether they are sentences or fixed windows."""

    parts: tuple[Part, ...]
    kind: SplitKind


@dataclass(frozen=True)
class PartScore:
    """One part of an explained passage: its span and text, the reranker's raw score of the passage
    without it, and the `drop` (full score minus `score_without`: positive when the part raised the score)."""

    start: int
    end: int
    text: str
    score_without: float
    drop: float


@dataclass(frozen=True)
class ExplainCost:
    """What `explain` will cost now: `parts` to leave out in turn, `pairs` not in the score cache (the full
    passage included when it is not cached) and the expected `seconds` at the reranker's measured speed
    (0.0 when every pair is cached; None before anything was measured, or for a reranker without a meter)."""

    parts: int
    kind: SplitKind
    pairs: int
    seconds: float | None


@dataclass(frozen=True)
class Explanation:
    """A passage's full score for a query and, per part, the score without it (see `PartScore`).

    `score` and `sigmoid` are the reranker's for the whole passage; `model` is the reranker's label."""

    query: str
    passage: str
    model: str
    kind: SplitKind
    score: float
    sigmoid: float | None
    parts: tuple[PartScore, ...]

    def most_important(self) -> PartScore:
        """The part whose removal lowers the score most (the first of equals)."""
        return max(self.parts, key=lambda part: part.drop)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: query, model, kind, score, sigmoid and the parts with spans, scores and drops."""
        return {"query": self.query, "model": self.model, "kind": self.kind, "score": self.score,
                "sigmoid": self.sigmoid, "passage": self.passage,
                "parts": [{"start": part.start, "end": part.end, "text": part.text,
                           "score_without": part.score_without, "drop": part.drop} for part in self.parts]}


# -- splitting --------------------------------------------------------------------------------------


def split_sentences(text: str) -> tuple[Part, ...]:
    """Return the sentences of `text`: runs ending at sentence punctuation of any script (. ! ? … and
    。！？ । ॥ ؟ ۔ ። ։ ။ །, with closing quotes and brackets kept) or at a blank line.

    Latin-script ends count only before a space or the end of the text, so "3.14" stays whole, and a full
    stop after a common abbreviation (Dr, Mr, Prof, St, e.g, z.B, Sra, ...) ends no sentence. Text after
    the last end is a sentence too. Spans leave out surrounding whitespace; empty pieces are dropped.

    >>> [part.text for part in split_sentences("茶来自中国。它很好喝！")]
    ['茶来自中国。', '它很好喝！']
    >>> [part.text for part in split_sentences("Pi is 3.14 or so. Really?")]
    ['Pi is 3.14 or so.', 'Really?']
    >>> [part.text for part in split_sentences("Dr. Smith met Mr. Jones. They talked.")]
    ['Dr. Smith met Mr. Jones.', 'They talked.']
    """
    parts: list[Part] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.group() == "." and _ABBREVIATION.search(text[max(0, match.start() - _ABBREVIATION_REACH):
                                                                match.start()]):
            continue
        end = match.end() if match.group().strip() else match.start()  # a blank line is no part of a sentence
        _add_part(parts, text, start, end)
        start = match.end()
    _add_part(parts, text, start, len(text))
    return tuple(parts)


def split_windows(text: str, window: int | None = None) -> tuple[Part, ...]:
    """Return `text` cut into windows of `window` units: words, or single characters in scripts written
    without spaces (Chinese, Japanese, Korean, Thai, Lao, Khmer, Myanmar, Tibetan).

    Without `window`: DEFAULT_WINDOW_UNITS, or more when that would give more than MAX_WINDOWS windows.
    Raises ValueError for a window below 1.

    >>> [part.text for part in split_windows("one two three four five", 2)]
    ['one two', 'three four', 'five']
    >>> [part.text for part in split_windows("茶树生长在山坡上人们春天采摘", 6)]
    ['茶树生长在山', '坡上人们春天', '采摘']
    """
    units = [match.span() for match in _UNIT.finditer(text)]
    if window is None:
        window = max(DEFAULT_WINDOW_UNITS, math.ceil(len(units) / MAX_WINDOWS))
    if window < 1:
        raise ValueError(f"window={window} must be at least 1 unit (a word, or a character without spaces)")
    return tuple(Part(units[i][0], units[min(i + window, len(units)) - 1][1],
                      text[units[i][0]:units[min(i + window, len(units)) - 1][1]])
                 for i in range(0, len(units), window))


def split_passage(text: str, *, window: int | None = None) -> Split:
    """Return the parts `explain` leaves out in turn: the sentences of `text` (`split_sentences`) when it
    has two or more, else fixed windows (`split_windows`, `window` units each). A text with neither
    sentence punctuation nor more than one window is one part; an empty one has none.

    There are never more than MAX_WINDOWS parts: more sentences than that are merged into at most
    MAX_WINDOWS runs of adjacent sentences of about equal length (kind "sentence" still; each run's span
    reaches from its first sentence's start to its last one's end)."""
    sentences = split_sentences(text)
    if len(sentences) > MAX_WINDOWS:
        return Split(_merge_sentences(text, sentences, MAX_WINDOWS), "sentence")
    if len(sentences) >= 2:
        return Split(sentences, "sentence")
    windows = split_windows(text, window)
    if len(windows) >= 2:
        return Split(windows, "window")
    return Split(sentences, "sentence")


def _merge_sentences(text: str, sentences: tuple[Part, ...], groups: int) -> tuple[Part, ...]:
    """Merge `sentences` (in order) into at most `groups` contiguous runs of about equal length: each
    sentence joins the run its middle character falls in when the text is cut into `groups` equal stretches."""
    first, last = sentences[0].start, sentences[-1].end
    length = max(last - first, 1)
    runs: list[list[Part]] = []
    run_of: int | None = None
    for sentence in sentences:
        middle = (sentence.start + sentence.end) / 2 - first
        run = min(groups - 1, int(middle * groups / length))
        if run != run_of:
            runs.append([])
            run_of = run
        runs[-1].append(sentence)
    return tuple(Part(run[0].start, run[-1].end, text[run[0].start:run[-1].end]) for run in runs)


def passage_without(passage: str, part: Part) -> str:
    """Return `passage` with `part` left out: the whitespace on either side of it becomes the one run that
    stood after it (or before it, at the end), and none at the edges of the text.

    >>> passage_without("A b. C d. E f.", Part(5, 9, "C d."))
    'A b. E f.'
    >>> passage_without("甲。乙。丙。", Part(2, 4, "乙。"))
    '甲。丙。'
    """
    if not (0 <= part.start <= part.end <= len(passage)) or passage[part.start:part.end] != part.text:
        raise ValueError(f"part {part.start}..{part.end} ({part.text[:30]!r}) is not a span of this passage; "
                         "take parts from split_passage(passage)")
    left, right = passage[:part.start], passage[part.end:]
    kept_left, kept_right = left.rstrip(), right.lstrip()
    gap = right[:len(right) - len(kept_right)] or left[len(kept_left):]
    if not kept_left or not kept_right:
        return kept_left + kept_right
    return kept_left + gap + kept_right


# -- scoring ----------------------------------------------------------------------------------------


def explain_cost(reranker: Reranker, query: str, passage: str, *, title: str = "",
                 window: int | None = None) -> ExplainCost:
    """What `explain(reranker, query, passage, title=title)` would cost now, without scoring anything.

    Pairs in the score cache cost nothing. The time is the uncached pairs at the reranker's measured seconds
    per pair (`MeasuredReranker.throughput`; None before it has scored anything)."""
    split = split_passage(passage, window=window)
    texts = _texts(passage, split, title)
    reranker = measured(reranker)
    pairs = reranker.uncached(query, texts) if query.strip() else len(set(texts))
    seconds = 0.0 if pairs == 0 else reranker.expected_seconds(pairs)
    return ExplainCost(len(split.parts), split.kind, pairs, seconds)


def explain(reranker: Reranker, query: str, passage: str, *, title: str = "", window: int | None = None,
            progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Explanation:
    """Score `passage` for `query` whole and with each part of `split_passage(passage)` left out in turn.

    `title`, when given, is scored in front of every version as the pipeline scores titled passages
    (``title + "\\n" + passage``), so the full score is the one the reranked column shows. `progress` and
    `should_stop` go to `reranker.score` (one call for every pair; `inference.RerankCancelled` when
    stopped). Raises ValueError for an empty query or passage.

    >>> explanation = explain(reranker, "where does tea grow", "Tea grows on hills. Bees hum.")  # doctest: +SKIP
    >>> explanation.most_important().text  # doctest: +SKIP
    'Tea grows on hills.'
    """
    if not query.strip():
        raise ValueError("the query is empty; give the query the passage was ranked for")
    if not passage.strip():
        raise ValueError("the passage is empty; give the text of a ranked passage")
    split = split_passage(passage, window=window)
    texts = _texts(passage, split, title)
    scores = reranker.score(query, texts, progress=progress, should_stop=should_stop)
    full: PairScore = scores[0]
    parts = tuple(PartScore(part.start, part.end, part.text, without.raw, full.raw - without.raw)
                  for part, without in zip(split.parts, scores[1:], strict=True))
    return Explanation(query, passage, reranker.label, split.kind, full.raw, full.sigmoid, parts)


def _texts(passage: str, split: Split, title: str) -> list[str]:
    """The full passage, then the passage without each part, as the reranker reads them."""
    return [_with_title(title, text) for text in
            (passage, *(passage_without(passage, part) for part in split.parts))]


def _with_title(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text


def _add_part(parts: list[Part], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        begin = start + len(piece) - len(piece.lstrip())
        parts.append(Part(begin, begin + len(stripped), stripped))

