"""How much a decoding looks like real text: what picks one encoding among several that decode a file.

`search.decoding` decodes a file that is not UTF-8 with every candidate code page and ranks the results
with `rank_decodings`, by two measures:

- `implausibility(text)`: a count of what real text rarely holds and wrong decodings often do (stray
  symbols and control characters, words mixing scripts, case flips inside words, vowel-less words,
  punctuation glued between letters, misspelt Thai, rare CJK characters, spaces between Han words);
- the language fastText reads in the text, how sure it is, and whether the code page was made for that
  language (`CODE_PAGE_LANGUAGES`): Hebrew bytes read as cp1251 make Cyrillic words with a vowel here and
  there, which no count above catches, but fastText is 23% sure they are Russian and 99.97% sure the
  cp1255 reading is Hebrew; French read as cp1250 ("trčs") is still French, which cp1250 was not made for.

The language is asked only of the readings whose implausibility is close to the best one's.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import NamedTuple

import regex

from .langid.base import CHINESE, script_candidates

logger = logging.getLogger(__name__)

SCORE_CHARS = 4000
_FIRST_LOOK_CHARS = 600
_LANGUAGE_CHARS = 1000
# A reading this much more implausible than the best is out; closer ones are ranked with their language.
_TOLERANCE = 3
_NOT_ITS_LANGUAGE = 2.0  # cost of a reading whose language the code page was not made for
_UNSURE = 3.0  # cost of a reading fastText is not sure of, times (1 - its probability)
_SURE = 0.5  # fastText's language counts from this probability on
_CLOSE = 1.0  # two readings whose costs differ less than this are a guess of low confidence

_WESTERN = frozenset({"en", "fr", "de", "es", "pt", "it", "nl", "sv", "da", "no", "fi", "ca", "af", "id", "sw", "tl",
                      "so", "sq", "et", "cy"})
_CENTRAL = frozenset({"pl", "cs", "sk", "hu", "sl", "hr", "ro", "sq"})
_CYRILLIC = frozenset({"ru", "uk", "bg", "mk"})
_CHINESE = frozenset({"zh"})
CODE_PAGE_LANGUAGES: dict[str, frozenset[str]] = {
    "cp1252": _WESTERN, "iso8859-1": _WESTERN, "iso8859-15": _WESTERN, "mac-roman": _WESTERN, "cp850": _WESTERN,
    "cp1250": _CENTRAL, "iso8859-2": _CENTRAL,
    "cp1251": _CYRILLIC, "koi8-r": frozenset({"ru", "bg"}), "koi8-u": frozenset({"uk", "ru"}), "iso8859-5": _CYRILLIC,
    "cp866": frozenset({"ru", "uk", "bg"}), "mac-cyrillic": _CYRILLIC,
    "cp1253": frozenset({"el"}), "iso8859-7": frozenset({"el"}),
    "cp1254": frozenset({"tr"}), "iso8859-9": frozenset({"tr"}),
    "cp1255": frozenset({"he"}), "iso8859-8": frozenset({"he"}),
    "cp1256": frozenset({"ar", "fa", "ur"}), "iso8859-6": frozenset({"ar"}),
    "cp1257": frozenset({"lt", "lv", "et"}), "iso8859-13": frozenset({"lt", "lv", "et"}),
    "cp874": frozenset({"th"}), "tis-620": frozenset({"th"}),
    "gb18030": _CHINESE, "gbk": _CHINESE, "gb2312": _CHINESE, "hz": _CHINESE,
    "cp950": _CHINESE, "big5": _CHINESE, "big5hkscs": _CHINESE,
    "cp932": frozenset({"ja"}), "shift_jis": frozenset({"ja"}), "euc_jp": frozenset({"ja"}),
    "iso2022_jp": frozenset({"ja"}),
    "cp949": frozenset({"ko"}), "euc_kr": frozenset({"ko"}), "iso2022_kr": frozenset({"ko"}),
}
"""Python codec name -> the language groups (langdetect's codes) it was made for; codecs not listed
(UTF-16, UTF-32) fit every language."""


class Reading(NamedTuple):
    """One candidate decoding: the codec, the text it gave, and what ranking found. `alternatives` are the
    other codecs that gave the same text; `codec` is the first of them made for its language."""

    codec: str
    text: str
    implausibility: int
    language: str = ""
    probability: float = 0.0
    cost: float = 0.0
    alternatives: tuple[str, ...] = ()


class Ranked(NamedTuple):
    """The readings from best to worst, and whether the best one is a guess of low confidence."""

    readings: tuple[Reading, ...]
    low_confidence: bool


def rank_decodings(decodings: Sequence[tuple[str, str]]) -> Ranked:
    """Rank (codec, text) pairs, given in order of preference, from most to least plausible.

    Readings more than a few points of `implausibility` behind the best are ranked by it alone; the
    others also by their language (see the module doc), ties going to the earlier codec. Readings that
    give the same text count once, under the earlier codec. Raises ValueError when `decodings` is empty.
    """
    if not decodings:
        raise ValueError("rank_decodings needs at least one (codec, text) pair")
    same: dict[str, list[tuple[str, str]]] = {}
    for codec, text in decodings:
        same.setdefault(text[:SCORE_CHARS], []).append((codec, text))
    # A first look at the start of each reading drops the hopeless ones before the full count.
    first = {sample: implausibility(sample[:_FIRST_LOOK_CHARS], group[0][0]) for sample, group in same.items()}
    lowest = min(first.values())
    hopeless = lowest + 2 * _TOLERANCE + lowest // 2
    readings = [Reading(group[0][0], group[0][1],
                        implausibility(sample, group[0][0]) if first[sample] <= hopeless else 10**6 + first[sample],
                        alternatives=tuple(codec for codec, _ in group[1:]))
                for sample, group in same.items()]
    best = min(reading.implausibility for reading in readings)
    limit = best + _TOLERANCE + best // 4
    order = {reading.codec: position for position, reading in enumerate(readings)}
    close = [_with_language(reading) for reading in readings if reading.implausibility <= limit]
    close.sort(key=lambda reading: (reading.cost, reading.implausibility, order.get(reading.codec, len(order))))
    rest = sorted((reading for reading in readings if reading.implausibility > limit),
                  key=lambda reading: (reading.implausibility, order[reading.codec]))
    low = len(close) > 1 and close[1].cost - close[0].cost < _CLOSE
    return Ranked((*close, *rest), low)


def _with_language(reading: Reading) -> Reading:
    sample = _language_sample(reading.text)
    language, probability = _language(sample)
    cost = float(reading.implausibility)
    codec = reading.codec
    if language:
        # Steps of 0.5: fastText's 0.97 and 0.99 are the same answer, and the earlier codec should win.
        cost += round(_UNSURE * (1.0 - probability) * 2) / 2
    if language and probability >= _SURE:  # below, the language is noise: "café" alone is not Czech
        cost += _foreign_letters(sample, language)
        codecs = (reading.codec, *reading.alternatives)
        made_for = [codec for codec in codecs if language in CODE_PAGE_LANGUAGES.get(codec, (language,))]
        if made_for:
            codec = made_for[0]
        else:
            cost += _NOT_ITS_LANGUAGE
    return reading._replace(codec=codec, language=language, probability=probability, cost=cost)


def _language_sample(text: str) -> str:
    """What fastText reads: the first lines that hold non-ASCII characters, and of them only the words that
    do when those are not Latin (the ASCII of a CSV header or JSON keys would outvote a short Chinese text)."""
    lines = [line for line in text[:SCORE_CHARS].split("\n") if not line.isascii()]
    sample = "\n".join(lines)[:_LANGUAGE_CHARS]
    letters = [char for char in sample if char > "\x7f" and char.isalpha()]
    if sum(_script(char) == "Latin" for char in letters) * 2 < len(letters):
        sample = " ".join(_NON_ASCII_WORD.findall(sample))
    return sample


_NON_ASCII_WORD = regex.compile(r"[^\s\x00-\x7f]+")


def _language(sample: str) -> tuple[str, float]:
    """fastText's most probable language group of `sample` and its raw probability ("", 0 without letters
    or without fastText). Raw: unlike `search.language`, not renormalised over the languages the script
    allows, which would make any Greek-looking nonsense Greek for sure."""
    detector = _fasttext()
    if detector is None or not _LETTER.search(sample):
        return "", 0.0
    scores = detector.scores(sample)
    if script_candidates(sample) == list(CHINESE):
        # Han without kana or Hangul is Chinese, as `search.language` decides; how sure fastText is that it
        # reads Chinese (or Japanese, which it takes short Chinese for) tells real text from misread bytes.
        return "zh", min(1.0, sum(probability for label, probability in scores if label in _HAN_LABELS))
    if not scores:
        return "", 0.0
    label, probability = scores[0]
    return _GROUPS.get(label, label), probability


# The letters beyond a-z each language writes (upper case follows); a reading whose language is known and that
# holds letters outside its alphabet ("ąli" read as Czech, "Nagymamįm" as Hungarian) costs a point each.
_LOANS = "éèêëàâäîïôöûüùçñ"
_ALPHABETS: dict[str, frozenset[str]] = {language: frozenset(letters + letters.upper()) for language, letters in {
    "en": _LOANS, "fr": "àâæçéèêëîïôœùûüÿ", "de": "äöüßéèà", "es": "áéíñóúü", "pt": "áâãàçéêíóôõú",
    "it": "àèéìíîòóùú", "nl": "áéëèïíóöúü", "sv": "åäöé", "da": "æøåé", "no": "æøåéó", "fi": "äöåšž",
    "ca": "àçèéíïòóúü·", "pl": "ąćęłńóśźż", "cs": "áčďéěíňóřšťúůýž", "sk": "áäčďéíĺľňóôŕšťúýž",
    "hu": "áéíóöőúüű", "sl": "čšž", "hr": "čćđšž", "ro": "ăâîșțşţ", "tr": "çğıöşüâîû" + "İ",
    "lt": "ąčęėįšųūž", "lv": "āčēģīķļņšūž", "et": "äöõüšž", "sq": "çë",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя", "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя'",
    "bg": "абвгдежзийклмнопрстуфхцчшщъьюя", "mk": "абвгдѓежзѕијклљмнњопрстќуфхцчџш",
}.items()}


def _foreign_letters(sample: str, language: str) -> int:
    alphabet = _ALPHABETS.get(language)
    if alphabet is None:
        return 0
    script = "Cyrillic" if language in ("ru", "uk", "bg", "mk") else "Latin"
    return sum(1 for char in sample if char > "\x7f" and char not in alphabet and char.isalpha()
               and _script(char) == script)


_GROUPS = {"yue": "zh", "wuu": "zh", "nn": "no", "arz": "ar", "sh": "hr", "bs": "hr"}
_LETTER = regex.compile(r"\p{L}")
_HAN_LABELS = frozenset({"zh", "yue", "wuu", "ja"})


@cache
def _fasttext():
    from .langid import fasttext_backend

    try:
        return fasttext_backend.load()
    except (ImportError, ValueError) as error:  # the ranking still works, by implausibility alone
        logger.warning("fastText is unavailable; legacy encodings are told apart without it: %s", error)
        return None


_SCRIPT = regex.compile(
    r"(?P<Latin>\p{Script=Latin})|(?P<Cyrillic>\p{Script=Cyrillic})|(?P<Greek>\p{Script=Greek})"
    r"|(?P<Arabic>\p{Script=Arabic})|(?P<Hebrew>\p{Script=Hebrew})|(?P<Thai>\p{Script=Thai})"
    r"|(?P<Hangul>\p{Script=Hangul})"
    r"|(?P<CJK>[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Bopomofo}])"  # extensions: ー and 々 too
)
_WORD = regex.compile(r"\p{L}[\p{L}\p{M}]*")
_VOWELS = {"Latin": frozenset("aeiouy"), "Cyrillic": frozenset("аеиоуыэюяіїєў"), "Greek": frozenset("αεηιουω")}
_ALWAYS_ODD = frozenset({"Cc", "Co", "Cs", "Cn"})
_SYMBOLS = frozenset({"No", "So", "Sm", "Sk"})
# Thai spelling rules a wrong decoding (CJK bytes read as cp874) breaks: a leading vowel comes
# before a consonant, an above/below vowel or tone mark sits on a consonant or another mark, a following
# vowel (ะ า ำ ๅ), the repetition mark ๆ and the abbreviation mark ฯ follow a letter, and ฯ ends a word
# (but in ฯลฯ).
_THAI_MISSPELLING = regex.compile(r"[\u0e40-\u0e44](?![\u0e01-\u0e2e])|(?<![\u0e01-\u0e2e\p{Mn}])\p{Mn}"
                                  r"|(?<![\u0e01-\u0e4e])[\u0e30\u0e32\u0e33\u0e45\u0e46\u0e2f]"
                                  r"|\u0e2f(?=[\u0e01-\u0e2e\u0e30-\u0e4e])(?!\u0e25\u0e2f)")
# Obsolete, Pali-only or rare Thai letters and signs, bare Hangul jamo and half-width katakana: common in wrong
# decodings of CJK bytes and rare in real text.
# Also the Greek ΰ and ΐ (Cyrillic а and р read as cp1253) and the florin ƒ (cp850's â read as cp1252).
_RARE_LETTERS = (frozenset("\u0e03\u0e05\u0e06\u0e0c\u0e0e\u0e0f\u0e10\u0e11\u0e12\u0e26\u0e3a\u0e4e\u0e4f\u0e5a\u0e5b")
                 | frozenset("ΰΐƒ") | frozenset(map(chr, range(0x3131, 0x318F)))
                 | frozenset(map(chr, range(0xFF66, 0xFFA0))))
# A final sigma is the last letter of a word (Cyrillic т read as cp1253 puts it anywhere).
_INNER_FINAL_SIGMA = regex.compile(r"ς(?=\p{L})")
_CJK_GROUPS = frozenset({"CJK", "Hangul"})
# Punctuation and signs a single-byte code page puts where another has letters: between two letters they
# betray the wrong one ("caf‚", "pi¹ka"). Not the apostrophe ’ nor the middle dot (Catalan l·l).
_GLUED = regex.compile(r"(?<=\p{L})[‚„…†‡ˆ‰‹“”•˜™›¡¢£¤¥¦§¨©«¬®¯°±²³´¶¸¹»¼½¾¿×÷€](?=\p{L})|(?<=\p{Ll})–(?=\p{Ll})"
                    r"|(?<=\p{L})[‚„]")
# Han or kana words separated by a space: Chinese and Japanese are written without spaces (but around a
# word here and there), Korean read as Chinese has one every few characters.
_SPACED_HAN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}] (?=[\p{Han}\p{Hiragana}\p{Katakana}])")
# Modern Greek accents every lower-case word of two syllables or more (a diphthong is one); Cyrillic read
# as cp1253 seldom makes an accented letter.
_GREEK_VOWEL_GROUPS = regex.compile(r"[αεηιουωάέήίόύώϊϋΐΰ]+")
_GREEK_ACCENTED = regex.compile(r"[άέήίόύώΐΰ]")
# Korean words are Hangul, with a Hanja word now and then: switching back and forth inside one word is
# Chinese read as cp949.
_CJK_WORD = regex.compile(r"[\p{Han}\p{Hangul}]{2,}")
_HANGUL_HAN = regex.compile(r"\p{Hangul}(?=\p{Han})|\p{Han}(?=\p{Hangul})")
# Punctuation where a Cyrillic capital should be (Mac Cyrillic read as cp1251: "‚ каком", "’есла"), a low
# quote before a space, a section sign or no-break space after a letter; and a middle dot beside a letter
# but in Catalan's l·l.
_STRAY_PUNCTUATION = regex.compile(r"(?<!\p{L})[‚…†‡€‰‹‘’”•–—˜™›](?=\p{Cyrillic})|‚(?=\s)|(?<=\p{L})[§\xa0](?=\p{L})"
                                   r"|(?<=\p{L})§")
# A sentence that starts with a lower-case letter beyond ASCII: the case-swapping misreadings (KOI8 as
# cp1253 or cp1251, cp1251 as Mac Cyrillic) make them at every sentence.
_LOWER_SENTENCE_START = regex.compile(r"(?:^|(?<=[.!?] ))(?=[^\x00-\x7f])\p{Ll}")
_MIDDLE_DOT = regex.compile(r"(?<=\p{L})·|·(?=\p{L})")


@lru_cache(maxsize=8192)
def _script(char: str) -> str:
    match = _SCRIPT.match(char)
    return match.lastgroup if match and match.lastgroup else "Other"


@lru_cache(maxsize=8192)
def _base_letter(char: str) -> str:
    return unicodedata.normalize("NFD", char.lower())[0]


# The common level of each character set (a codec and its lead bytes): GB 2312 level 1 (3,755 characters),
# Big5 level 1 (5,401) and JIS X 0208 level 1 (2,965) cover over 99% of the Han characters of real text.
_LEVEL_ONE = {"gb": ("gb2312", 0xB0, 0xD7), "big5": ("big5", 0xA4, 0xC6), "jis": ("euc_jp", 0xB0, 0xCF)}
_CHARACTER_SET = {**dict.fromkeys(("gb18030", "gbk", "gb2312", "hz"), "gb"),
                  **dict.fromkeys(("cp950", "big5", "big5hkscs"), "big5"),
                  **dict.fromkeys(("cp932", "shift_jis", "euc_jp", "iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext"),
                                  "jis")}


@lru_cache(maxsize=65536)
def _rare_cjk(char: str, character_set: str | None) -> bool:
    """A Hangul syllable outside the 2,350 of KS X 1001, or a Han character outside the common level of the
    reading's character set (of all three when it has none, as UTF-16): real text seldom holds them, wrong
    decodings of CJK bytes often (GBK read as EUC-JP gives JIS level-2 kanji)."""
    if "\uac00" <= char <= "\ud7a3":
        return not _level_one(char, "euc_kr", 0xB0, 0xC8)  # Python writes the others as 8-byte jamo sequences
    sets = [_LEVEL_ONE[character_set]] if character_set in _LEVEL_ONE else list(_LEVEL_ONE.values())
    return not any(_level_one(char, *level) for level in sets)


def _level_one(char: str, codec: str, low: int, high: int) -> bool:
    try:
        encoded = char.encode(codec)
    except UnicodeEncodeError:
        return False
    return len(encoded) == 2 and low <= encoded[0] <= high


@lru_cache(maxsize=65536)
def _word_points(word: str) -> int:
    """The points of one word (see `implausibility`); cached: words repeat in text as in its misreadings."""
    letters = [char for char in word if not unicodedata.category(char).startswith("M")]
    scripts = {_script(char) for char in letters}
    if len(scripts) > 1 and not scripts <= _CJK_GROUPS:
        return 2
    script = scripts.pop()
    points = sum(before.islower() and after.isupper() for before, after in zip(letters, letters[1:], strict=False))
    if script == "Latin" and len(letters) >= 3 and 2 * sum(not char.isascii() for char in letters) > len(letters):
        points += 1
    vowels = _VOWELS.get(script)
    if vowels and len(letters) >= 4 and not any(_base_letter(char) in vowels for char in letters):
        points += 1
    lowered = word.lower()
    if script == "Greek" and not word.isupper() and len(_GREEK_VOWEL_GROUPS.findall(lowered)) >= 2 \
            and not _GREEK_ACCENTED.search(lowered):
        points += 1
    return points


def implausibility(text: str, codec: str | None = None) -> int:
    """How unlike real text a decoding (by `codec`, when known) looks. One point per control, unassigned or
    private-use character, symbol glued to a letter, rare letter or rare CJK character, misspelt Thai
    cluster, letter-glued punctuation, Hangul/Han switch inside a word, sentence that starts in lower case
    beyond ASCII, and space between Han words past one in twenty Han characters; per word that mixes
    scripts (two), is Latin made mostly of accented letters, or has no vowel (or, in Greek, two syllables
    and no accent); and per case flip inside a word.

    >>> implausibility("Привет, мир"), implausibility("Ïðèâåò, ìèð"), implausibility("6½ or a × b")
    (0, 2, 0)
    """
    score = 0
    character_set = _CHARACTER_SET.get(codec or "")
    han = 0
    for index, char in enumerate(text):
        if char <= "\x7f":
            continue
        category = unicodedata.category(char)
        if category in _ALWAYS_ODD or char in _RARE_LETTERS:
            score += 1
        elif category in _SYMBOLS:
            # ½ after a digit or × between spaces is real text; a symbol in a word is a letter misread.
            neighbours = text[index - 1 : index] + text[index + 1 : index + 2]
            score += any(neighbour.isalpha() for neighbour in neighbours)
        elif "\u4e00" <= char <= "\u9fff":
            han += 1
            score += _rare_cjk(char, character_set)
        elif "\uac00" <= char <= "\ud7a3":
            score += _rare_cjk(char, None)
    score += len(_THAI_MISSPELLING.findall(text)) + len(_GLUED.findall(text)) + len(_INNER_FINAL_SIGMA.findall(text))
    score += len(_STRAY_PUNCTUATION.findall(text)) + max(0, len(_SPACED_HAN.findall(text)) - han // 20)
    score += len(_MIDDLE_DOT.findall(text)) - text.count("l·l") - text.count("L·L")
    score += len(_LOWER_SENTENCE_START.findall(text))
    score += sum(max(0, len(_HANGUL_HAN.findall(word)) - 1) for word in _CJK_WORD.findall(text))
    score += sum(_word_points(word) for word in _WORD.findall(text) if not word.isascii())
    return score
