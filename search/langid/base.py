"""What every language detector promises, and the script rules they share.

A detector gets a *sample*: the first `MAX_DETECT_CHARS` characters of a text that has at least one
letter (`search.language` checks both), and answers in langdetect's codes (`DETECTED_CODES`), so the
names, stemmers and reranker choice keyed on those codes work whichever detector ran.

Texts with Han characters are first narrowed by script: no kana rules out Japanese, no Hangul rules
out Korean, and a text whose letters are a quarter or more CJK is Chinese, Japanese or Korean whatever
its Latin words say. On XQuAD this took langdetect on Chinese paragraphs from 96.7% to 100% and on
questions from 79.8% to 100%, and fastText on questions from 94.3% to 100%.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

import regex

from search.types import Language

# langdetect reads up to 10,000 characters; a paragraph's worth decides the language just as well.
MAX_DETECT_CHARS = 2000
# From this share of CJK letters on, a text is taken as Chinese, Japanese or Korean. A Han character
# stands for about a word and a Latin letter for a fifth of one, so Chinese with English names in it
# (XQuAD zh: 27% Han letters and up) must not fall to Latin n-grams.
CJK_SHARE = 0.25
CHINESE = ("zh-cn", "zh-tw")
_GROUPS = {"zh-cn": "zh", "zh-tw": "zh"}

# langdetect's 55 profiles: the codes every detector answers in.
DETECTED_CODES: tuple[str, ...] = (
    "af", "ar", "bg", "bn", "ca", "cs", "cy", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "gu", "he",
    "hi", "hr", "hu", "id", "it", "ja", "kn", "ko", "lt", "lv", "mk", "ml", "mr", "ne", "nl", "no", "pa", "pl",
    "pt", "ro", "ru", "sk", "sl", "so", "sq", "sv", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi",
    "zh-cn", "zh-tw",
)

_LETTER = regex.compile(r"\p{L}")
_HAN = regex.compile(r"\p{Han}")
_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")
_HANGUL = regex.compile(r"\p{Hangul}")


class Detector(Protocol):
    """A loaded language detector. `detect` is deterministic and safe to call from several threads."""

    name: str  # "fasttext" or "langdetect": what --langid and $SEARCH_LANGID call it

    def detect(self, sample: str) -> Language:
        """The most probable language of `sample` (letters guaranteed), or `UNKNOWN_LANGUAGE`."""
        ...


def group_language(code: str) -> str:
    """Return the display group of a code: ``zh-cn``/``zh-tw`` -> ``zh``, any other code unchanged.

    >>> group_language("zh-tw"), group_language("de")
    ('zh', 'de')
    """
    return _GROUPS.get(code, code)


def has_letters(sample: str) -> bool:
    """Whether `sample` has a letter in any script (digits, punctuation and emoji alone have no language)."""
    return _LETTER.search(sample) is not None


def script_candidates(sample: str, languages: Collection[str] = DETECTED_CODES) -> list[str] | None:
    """The languages of `languages` that the script of `sample` leaves possible, in their order, or None
    when the script rules out nothing (no Han character).

    >>> script_candidates("历史文化")
    ['zh-cn', 'zh-tw']
    """
    # langdetect's Korean and Japanese profiles hold Han characters too, and on plain Chinese it picked
    # Korean for one XQuAD question in six; fastText's small model calls short Chinese questions Japanese.
    # Modern Korean is written with Hangul and Japanese with kana, so without them neither is possible;
    # with enough CJK letters only the CJK languages are.
    han = len(_HAN.findall(sample))
    if han == 0:
        return None
    kana = len(_KANA.findall(sample))
    hangul = len(_HANGUL.findall(sample))
    excluded: set[str] = set()
    if kana == 0:
        excluded.add("ja")
    if hangul == 0:
        excluded.add("ko")
    if (han + kana + hangul) >= CJK_SHARE * len(_LETTER.findall(sample)):
        return [language for language in (*CHINESE, "ja", "ko") if language not in excluded]
    return [language for language in languages if language not in excluded]

