"""Language-aware text analysis: the terms BM25 indexes and the spans the app highlights.

A word is a run of letters, combining marks and digits, so Devanagari, Thai or Arabic vowel signs and
viramas never split it. Each word is NFKC-normalised and casefolded on its own (offsets keep pointing
into the original text), Arabic tatweel and harakat are dropped, and the word is stemmed with the
Snowball stemmer of the text's language when PyStemmer has one. Devanagari words are normalised
before stemming as Lucene's HindiNormalizer does (nukta, chandrabindu, dead n and long vowels), since
Hindi spells many words both ways (हिन्दी / हिंदी).

Scripts written without spaces (Han, kana, Hangul, Thai, Lao, Khmer, Myanmar, Tibetan) give each
character alone and every overlapping pair of characters, as Lucene's CJK analyser does with unigrams
kept; the choice follows the script of the characters, not the detected language, so a Chinese name
inside English text is cut up too, and Japanese kana and kanji run together.

Stopwords (`search.stopwords`) are marked, not dropped: the index keeps every term, so a query made only
of stopwords ("To be or not to be") still finds its passage, and per-language statistics (`search.bm25`)
keep such terms light. `query_terms` drops them from the query, in each language the query is matched
in, and highlighting skips them.

Measured on XQuAD with BM25 (nDCG@10): unigrams besides bigrams add 0.002 on Chinese and let a
one-character query match inside a longer run; the Devanagari normalisation adds 0.003 on Hindi.
Splitting words at apostrophes measured the same as keeping them (English 0.965 both) and also splits
French and Italian elisions; Lucene's light10 Arabic stemmer lost 0.006 to Snowball's, and adding
character 4- to 6-grams of long German compounds lost 0.02 to 0.03.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import regex
import Stemmer

from . import stopwords as stopword_lists

# Part of every index key: change it whenever analysis changes what terms a text gives.
ANALYSIS_VERSION = "1"

# langdetect codes (grouped, see search.language) -> Snowball algorithm names.
_SNOWBALL_NAMES = {
    "ar": "arabic",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "hi": "hindi",
    "hu": "hungarian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
}
# Only the algorithms this PyStemmer build has (older builds lack hindi, polish, ...).
STEMMERS: dict[str, str] = {
    language: name for language, name in _SNOWBALL_NAMES.items() if name in Stemmer.algorithms()
}

_NO_SPACE_SCRIPTS = "Han Hiragana Katakana Hangul Thai Lao Khmer Myanmar Tibetan Bopomofo Yi".split()
_NO_SPACE_CHAR = "".join(rf"\p{{scx={script}}}" for script in _NO_SPACE_SCRIPTS)
# A word: letters, marks and digits, with zero-width (non-)joiners allowed inside (Indic and Persian
# spelling uses them). Apostrophes and hyphens split words: "l'homme" -> "l", "homme".
_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:[\u200c\u200d]+[\p{L}\p{M}\p{N}]+)*")
# Inside a word: runs of no-space script (with the marks that follow them) or runs of anything else.
_SEGMENT = regex.compile(rf"(?P<no_space>(?:[{_NO_SPACE_CHAR}]\p{{M}}*)+)|(?:(?![{_NO_SPACE_CHAR}]).)+")
_GRAPHEME = regex.compile(r"\X")
# Tatweel, Arabic harakat (fathatan..sukun, extended marks, superscript alef) and zero-width joiners.
_DROPPED = regex.compile(r"[\u0640\u064b-\u065f\u0670\u200c\u200d]")
_DEVANAGARI = regex.compile(r"\p{Devanagari}")
# A nasal consonant with virama before a consonant is the same sound as the anusvara: हिन्दी = हिंदी.
_DEVANAGARI_DEAD_NASAL = regex.compile(r"[\u0919\u091e\u0923\u0928\u092e]\u094d(?=[\u0915-\u0939])")
_DEVANAGARI_FOLD = str.maketrans(
    {
        "\u0901": "\u0902",  # chandrabindu -> anusvara
        "\u093c": None,  # nukta (NFKC leaves क़ and the like decomposed)
        "\u0929": "\u0928",  # ऩ -> न, and the other precomposed nukta letters
        "\u0931": "\u0930",
        "\u0934": "\u0933",
        # long vowels and their signs -> short, candra vowels -> plain
        "\u0908": "\u0907",
        "\u090a": "\u0909",
        "\u0910": "\u090f",
        "\u0914": "\u0913",
        "\u0960": "\u090b",
        "\u090d": "\u090f",
        "\u0911": "\u0913",
        "\u0940": "\u093f",
        "\u0942": "\u0941",
        "\u0948": "\u0947",
        "\u094c": "\u094b",
        "\u0944": "\u0943",
        "\u0945": "\u0947",
        "\u0949": "\u094b",
    }
)

_local = threading.local()


@dataclass(frozen=True)
class Token:
    """One index term and where it came from: `start`/`end` are offsets into the original text."""

    term: str
    start: int
    end: int
    stopword: bool = False  # the word (or character run) is on a stopword list `tokenize` was asked to check


def tokenize(text: str, language: str = "unknown", *, stop_languages: Iterable[str] | None = None) -> list[Token]:
    """Return the index terms of `text` with their character spans in `text`, in reading order.

    `language` is a group code from `search.language` (``en``, ``de``, ``zh``, ``unknown``, ...); it
    picks the stemmer. A token is marked `stopword` when its word, before stemming, is on the list of
    one of `stop_languages` (default: `language` alone). Text without letters or digits gives ``[]``.

    >>> [(t.term, t.start, t.end, t.stopword) for t in tokenize("The dogs", "en")]
    [('the', 0, 3, True), ('dog', 4, 8, False)]
    >>> [t.term for t in tokenize("北京大学", "en")]
    ['北', '北京', '京', '京大', '大', '大学', '学']
    """
    stop = _stop_set(frozenset((language,) if stop_languages is None else stop_languages))
    tokens: list[Token] = []
    for word in _WORD.finditer(text):
        offset = word.start()
        for segment in _SEGMENT.finditer(word.group()):
            start = offset + segment.start()
            if segment.group("no_space") is None:
                surface = _surface(segment.group())
                term = _word_term(language, surface)
                if term:
                    tokens.append(Token(term, start, offset + segment.end(), surface in stop))
            else:
                tokens.extend(_unigrams_and_bigrams(segment.group(), start, stop))
    return tokens


def terms(text: str, language: str = "unknown") -> list[str]:
    """Return just the index terms of `tokenize(text, language)`, stopwords included.

    >>> terms("Straße", "de")
    ['strass']
    """
    return [token.term for token in tokenize(text, language, stop_languages=())]


def content_terms(text: str, language: str = "unknown", *, stop_languages: Iterable[str] | None = None) -> list[str]:
    """Return the terms of `text` in `language` without the stopwords of `stop_languages` (default: `language`).

    >>> content_terms("How far is the Moon from the Earth?", "en")
    ['moon', 'earth']
    >>> content_terms("Die Mauer", "en", stop_languages=("en", "de"))
    ['mauer']
    """
    return [token.term for token in tokenize(text, language, stop_languages=stop_languages) if not token.stopword]


def query_terms(query: str, query_language: str, corpus_languages: Iterable[str], *, stopwords: bool = True,
                own_stopwords: bool = True) -> dict[str, list[str]]:
    """Return the terms of `query` for each language group it is matched in, each term once per group.

    Every passage was analysed in its own detected language, so a query can only meet a passage
    through the terms that language's analysis gives; the query is therefore analysed in its own
    language and in each language of the corpus (which also rescues short texts whose detection is
    unsure). In each other language the stopwords of that language and of the query's language are
    dropped: "the" of an English query must not match "the" in a German passage. In the query's own
    language they are dropped when `own_stopwords` is true; false leaves them to BM25's per-language
    document frequencies, which weigh them better than a broad list once the language has enough
    passages (see `search.pipeline`). A query with nothing but stopwords in a language keeps them all
    there, so it still finds something. `stopwords=False` keeps every term (the analysis before lists).

    >>> query_terms("When did the Luna 2 probe reach the Moon?", "en", {"en", "de"})
    {'en': ['luna', '2', 'probe', 'reach', 'moon'], 'de': ['luna', '2', 'prob', 'reach', 'moon']}
    """
    by_language: dict[str, list[str]] = {}
    for group in dict.fromkeys([query_language, *sorted(set(corpus_languages) - {query_language})]):
        drop = stopwords and (own_stopwords or group != query_language)
        tokens = tokenize(query, group, stop_languages=(group, query_language) if drop else ())
        content = [token.term for token in tokens if not token.stopword] or [token.term for token in tokens]
        by_language[group] = list(dict.fromkeys(content))
    return by_language


def _unigrams_and_bigrams(run: str, start: int, stop: frozenset[str]) -> list[Token]:
    # Grapheme clusters, not code points, so a Thai vowel sign stays on its consonant.
    bounds = [start + match.start() for match in _GRAPHEME.finditer(run)]
    bounds.append(start + len(run))
    tokens = []
    for i, first in enumerate(bounds[:-1]):
        for end in bounds[i + 1 : i + 3]:  # the character alone, then with the next one
            term = _normalise(run[first - start : end - start])
            if term:
                tokens.append(Token(term, first, end, term in stop))
    return tokens


@lru_cache(maxsize=1 << 18)
def _surface(word: str) -> str:
    # The word as stopword lists are compared with it: normalised, not stemmed.
    term = _normalise(word)
    if _DEVANAGARI.search(term):
        term = _DEVANAGARI_DEAD_NASAL.sub("\u0902", term).translate(_DEVANAGARI_FOLD)
    return term


@lru_cache(maxsize=1 << 18)
def _word_term(language: str, surface: str) -> str:
    if not surface or language not in STEMMERS:
        return surface
    return _stemmer(language).stemWord(surface)


@lru_cache(maxsize=256)
def _stop_set(languages: frozenset[str]) -> frozenset[str]:
    words: set[str] = set()
    for language in languages:
        words.update(_surface(word) for word in stopword_lists.stopwords(language))
    return frozenset(words - {""})


@lru_cache(maxsize=1 << 16)
def _normalise(text: str) -> str:
    return _DROPPED.sub("", unicodedata.normalize("NFKC", text).casefold())


def _stemmer(language: str) -> Stemmer.Stemmer:
    # PyStemmer's Stemmer objects are not thread-safe: one per thread and language.
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    stemmer = stemmers.get(language)
    if stemmer is None:
        stemmer = stemmers[language] = Stemmer.Stemmer(STEMMERS[language])
    return stemmer
