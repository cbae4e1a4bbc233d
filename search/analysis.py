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

Measured on XQuAD with BM25 (nDCG@10): unigrams besides bigrams add 0.002 on Chinese and let a
one-character query match inside a longer run; the Devanagari normalisation adds 0.003 on Hindi.
Splitting words at apostrophes measured the same as keeping them (English 0.965 both) and also splits
French and Italian elisions; Lucene's light10 Arabic stemmer lost 0.006 to Snowball's, and adding
character 4- to 6-grams of long German compounds lost 0.02 to 0.03.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import regex
import Stemmer

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


def tokenize(text: str, language: str = "unknown") -> list[Token]:
    """Return the index terms of `text` with their character spans in `text`, in reading order.

    `language` is a group code from `search.language` (``en``, ``de``, ``zh``, ``unknown``, ...); it
    picks the stemmer, nothing else. Text without letters or digits gives ``[]``.

    >>> [(t.term, t.start, t.end) for t in tokenize("Running dogs", "en")]
    [('run', 0, 7), ('dog', 8, 12)]
    >>> [t.term for t in tokenize("北京大学", "en")]
    ['北', '北京', '京', '京大', '大', '大学', '学']
    """
    tokens: list[Token] = []
    for word in _WORD.finditer(text):
        offset = word.start()
        for segment in _SEGMENT.finditer(word.group()):
            start = offset + segment.start()
            if segment.group("no_space") is None:
                term = _word_term(language, segment.group())
                if term:
                    tokens.append(Token(term, start, offset + segment.end()))
            else:
                tokens.extend(_unigrams_and_bigrams(segment.group(), start))
    return tokens


def terms(text: str, language: str = "unknown") -> list[str]:
    """Return just the index terms of `tokenize(text, language)`.

    >>> terms("Straße", "de")
    ['strass']
    """
    return [token.term for token in tokenize(text, language)]


def _unigrams_and_bigrams(run: str, start: int) -> list[Token]:
    # Grapheme clusters, not code points, so a Thai vowel sign stays on its consonant.
    bounds = [start + match.start() for match in _GRAPHEME.finditer(run)]
    bounds.append(start + len(run))
    tokens = []
    for i, first in enumerate(bounds[:-1]):
        for end in bounds[i + 1 : i + 3]:  # the character alone, then with the next one
            term = _normalise(run[first - start : end - start])
            if term:
                tokens.append(Token(term, first, end))
    return tokens


@lru_cache(maxsize=1 << 18)
def _word_term(language: str, word: str) -> str:
    term = _normalise(word)
    if _DEVANAGARI.search(term):
        term = _DEVANAGARI_DEAD_NASAL.sub("\u0902", term).translate(_DEVANAGARI_FOLD)
    if not term or language not in STEMMERS:
        return term
    return _stemmer(language).stemWord(term)


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
