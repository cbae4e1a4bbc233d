"""Bytes to text, for corpora and judgments alike.

`decode_text` tries, in order: a byte-order mark (UTF-8, UTF-16, UTF-32); UTF-16 without one (NULs in
every other byte, or CJK text whose code units look like control bytes); UTF-8; then, unless the caller
wants UTF-8 only, the charset a file declares (HTML ``<meta charset>``) when Python knows it as a text
encoding, charset-normalizer's guess and the common legacy code pages, keeping the most plausible
decoding. Anything that is not plain UTF-8 is reported as a warning, so a user can see what was guessed.
Bad bytes never raise: a file that is not text comes back as None with a Problem saying why.
"""

from __future__ import annotations

import codecs
import logging
import unicodedata
from functools import lru_cache
from typing import NamedTuple

import charset_normalizer
import regex

from .types import Problem

logger = logging.getLogger(__name__)

_SNIFF_BYTES = 1 << 16
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
# Control bytes that never occur in text; deleting every other byte counts them fast.
_TEXT_BYTES = bytes(byte for byte in range(256) if not (byte < 0x20 and byte not in b"\t\n\v\f\r" or byte == 0x7F))
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
# Tried in order when a file is not UTF-8; ties go to the earlier one. Single-byte code pages
# come first: a multi-byte decoding of them sometimes succeeds by accident.
_LEGACY_ENCODINGS = (
    "cp1252",
    "cp1251",
    "cp1250",
    "cp1253",
    "cp1254",
    "cp1257",
    "koi8-r",
    "cp1255",
    "cp1256",
    "cp874",
    "shift_jis",
    "gb18030",
    "big5",
    "cp949",
    "euc-jp",
)
# Codecs Python calls text encodings that no web page or export means: they raise on any input
# ('undefined'), decode in quadratic time (punycode, idna) or turn escapes into text.
_NOT_CHARSETS = frozenset({"undefined", "punycode", "idna", "utf-7", "unicode-escape", "raw-unicode-escape"})
_SCORE_CHARS = 4000
_GUESS_MIN_BYTES = 200
_UTF16_MIN_CHARS = 4


class DecodedText(NamedTuple):
    """The text with newlines normalised to ``\\n`` (None when the bytes are not text) and what was met."""

    text: str | None
    problems: tuple[Problem, ...] = ()


def decode_text(data: bytes, source: str, declared: str | None = None, *, legacy: bool = True) -> DecodedText:
    """Decode a file's bytes, reporting every guess as a warning `Problem` naming `source`.

    `declared` is the charset the file names for itself (e.g. from ``<meta charset>``); an unknown or
    unusable name falls back to detection. With `legacy=False` (judgments, whose ids must match exactly)
    bytes that are not UTF-8 give text None and a Problem asking for UTF-8.

    >>> decode_text("Привет, мир. ".encode("cp1251") * 50, "a.txt").problems[0].message
    'decoded as cp1251 (not valid UTF-8)'
    """
    problems: list[Problem] = []
    text = _decode(data, source, declared, legacy, problems)
    if text is not None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        nuls = text.count("\x00")
        if nuls:
            problems.append(Problem(source, f"removed {nuls} NUL character(s)", skipped=False))
            text = text.replace("\x00", "")
    return DecodedText(text, tuple(problems))


def _decode(data: bytes, source: str, declared: str | None, legacy: bool, problems: list[Problem]) -> str | None:
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as error:
                problems.append(Problem(source, f"invalid {label} at byte {error.start}; bad bytes replaced with "
                                                "U+FFFD", skipped=False))
                return data.decode(codec, errors="replace")
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample and (utf16 := _utf16_by_nuls(sample)):
        try:
            text = data.decode(utf16)
        except UnicodeDecodeError:
            pass
        else:
            problems.append(Problem(source, f"decoded as {utf16.upper()} (no byte-order mark)", skipped=False))
            return text
    controls = len(sample.translate(None, _TEXT_BYTES))
    if controls > len(sample) // 20:
        if found := _utf16_by_plausibility(data):
            problems.append(Problem(source, f"decoded as {found[0].upper()} (no byte-order mark)", skipped=False))
            return found[1]
        problems.append(Problem(source, f"looks like a binary file, not text ({controls} control bytes in the "
                                        f"first {len(sample):,})"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        if not legacy:
            problems.append(Problem(source, f"{source} is not UTF-8 text (byte {error.start}: {error.reason}); "
                                            "save it as UTF-8"))
            return None
    if found := _utf16_by_plausibility(data):
        problems.append(Problem(source, f"decoded as {found[0].upper()} (no byte-order mark)", skipped=False))
        return found[1]
    charset = _charset(declared)
    text, encoding = _decode_legacy(data, charset)
    if encoding != charset:
        unknown = f"; the declared charset {declared!r} is not one Python can use" if declared and not charset else ""
        problems.append(Problem(source, f"decoded as {encoding} (not valid UTF-8{unknown})", skipped=False))
    return text


def _charset(declared: str | None) -> str | None:
    """The codec name of a declared charset, or None when Python has no usable text codec of that name."""
    if not declared:
        return None
    try:
        info = codecs.lookup(declared)
    except (LookupError, ValueError):
        return None
    if not info._is_text_encoding or info.name in _NOT_CHARSETS:  # type: ignore[attr-defined]
        return None
    return info.name


def _utf16_by_nuls(sample: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when NULs sit in every other byte, as in mostly-ASCII UTF-16."""
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even_nuls = sample[0 : 2 * pairs : 2].count(0)
    odd_nuls = sample[1 : 2 * pairs : 2].count(0)
    if odd_nuls > 0.4 * pairs and even_nuls < 0.05 * pairs:
        return "utf-16-le"
    if even_nuls > 0.4 * pairs and odd_nuls < 0.05 * pairs:
        return "utf-16-be"
    return None


def _utf16_by_plausibility(data: bytes) -> tuple[str, str] | None:
    """(codec, text) when `data` reads as UTF-16 text without a BOM and with few NULs, as CJK text does.

    The decoding must be strict, free of unassigned, private-use and control characters, and mostly one
    script; code units made of two printable ASCII bytes must be the minority, so ASCII or Latin text
    in a legacy code page is never read as CJK ("Bush hid the facts").
    """
    if len(data) % 2 or len(data) < 2 * _UTF16_MIN_CHARS:
        return None
    head = data[: 2 * _SCORE_CHARS]
    ascii_pairs = sum(1 for index in range(0, len(head), 2)
                      if 0x20 <= head[index] < 0x7F and 0x20 <= head[index + 1] < 0x7F)
    if ascii_pairs * 2 >= len(head) // 2:
        return None
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text[:_SCORE_CHARS]):
            return codec, text
    return None


def _looks_like_text(text: str) -> bool:
    letters: dict[str, int] = {}
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cn", "Co", "Cs") or (category == "Cc" and char not in "\t\n\r\f\v"):
            return False
        if category.startswith("L"):
            group = _script(char)
            letters[group] = letters.get(group, 0) + 1
    total = sum(letters.values())
    return total >= _UTF16_MIN_CHARS // 2 and max(letters.values()) >= 0.8 * total


def _decode_legacy(data: bytes, declared: str | None) -> tuple[str, str]:
    """Decode bytes that are not UTF-8: the declared encoding if it fits, else the most plausible candidate.

    Candidates are tried in order and the first with the lowest `_implausibility` wins. charset-normalizer's
    guess goes first for files long enough for its statistics (on a sentence or two it often picks e.g.
    mac_cyrillic for cp1251), so it breaks the ties the built-in check cannot (Hebrew against Cyrillic,
    Turkish against Western European).
    """
    candidates: list[str] = [declared] if declared else []
    if len(data) >= _GUESS_MIN_BYTES and (guess := _charset_normalizer_guess(data)):
        candidates.append(guess)
    candidates.extend(_LEGACY_ENCODINGS)
    best: tuple[int, str, str] | None = None
    seen: set[str] = set()
    for encoding in candidates:
        name = _charset(encoding)
        if name is None:
            continue
        try:
            text = data.decode(name)
        except (UnicodeError, LookupError, ValueError):
            continue
        if encoding == declared:
            return text, encoding
        if name in seen:
            continue
        seen.add(name)
        score = _implausibility(text[:_SCORE_CHARS])
        if best is None or score < best[0]:
            best = (score, name, text)
        if score == 0:
            break
    if best is None:
        return data.decode("latin-1"), "latin-1"
    return best[2], best[1]


def _charset_normalizer_guess(data: bytes) -> str | None:
    try:
        match = charset_normalizer.from_bytes(data[:_SNIFF_BYTES]).best()
    except Exception:  # a guess is optional: the built-in candidates still decode the file
        logger.warning("charset-normalizer failed on a file; guessing without it", exc_info=True)
        return None
    return match.encoding if match is not None else None


_SCRIPT = regex.compile(
    r"(?P<Latin>\p{Script=Latin})|(?P<Cyrillic>\p{Script=Cyrillic})|(?P<Greek>\p{Script=Greek})"
    r"|(?P<Arabic>\p{Script=Arabic})|(?P<Hebrew>\p{Script=Hebrew})|(?P<Thai>\p{Script=Thai})"
    r"|(?P<Hangul>\p{Script=Hangul})"
    r"|(?P<CJK>[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Bopomofo}])"
)
_WORD = regex.compile(r"\p{L}[\p{L}\p{M}]*")
_VOWELS = {"Latin": frozenset("aeiouy"), "Cyrillic": frozenset("аеиоуыэюяіїєў"), "Greek": frozenset("αεηιουω")}
_ODD_CATEGORIES = frozenset({"Cc", "Co", "Cs", "Cn", "No", "So", "Sm", "Sk"})
# Thai spelling rules a wrong decoding (CJK bytes read as cp874) breaks: a leading vowel comes
# before a consonant, and an above/below vowel or tone mark sits on a consonant or another mark.
_THAI_MISSPELLING = regex.compile(r"[\u0e40-\u0e44](?![\u0e01-\u0e2e])|(?<![\u0e01-\u0e2e\p{Mn}])\p{Mn}")
# Obsolete or Pali-only Thai letters and signs, and bare Hangul jamo, common in wrong decodings of
# CJK bytes and rare in real text.
_RARE_LETTERS = frozenset("\u0e03\u0e05\u0e26\u0e3a\u0e4e\u0e4f\u0e5a\u0e5b") | frozenset(
    map(chr, range(0x3131, 0x318F))
)
_CJK_GROUPS = frozenset({"CJK", "Hangul"})


@lru_cache(maxsize=8192)
def _script(char: str) -> str:
    match = _SCRIPT.match(char)
    return match.lastgroup if match and match.lastgroup else "Other"


@lru_cache(maxsize=8192)
def _base_letter(char: str) -> str:
    return unicodedata.normalize("NFD", char.lower())[0]


def _implausibility(text: str) -> int:
    """How unlike real text a decoding looks: mixed-script words, Latin words made mostly of accented
    letters, case flips inside words, vowel-less words, misspelt Thai and stray symbols each cost a point.

    This tells the common Windows code pages and the CJK multi-byte encodings apart (cp1251 Russian
    read as cp1252 gives 'Ïðèâåò'); it cannot weigh letter frequencies the way charset-normalizer can.
    """
    score = sum(
        1 for char in text if char > "\x7f" and (unicodedata.category(char) in _ODD_CATEGORIES or char in _RARE_LETTERS)
    )
    score += len(_THAI_MISSPELLING.findall(text))
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        letters = [char for char in word if not unicodedata.category(char).startswith("M")]
        scripts = {_script(char) for char in letters}
        if len(scripts) > 1 and not scripts <= _CJK_GROUPS:
            score += 2
            continue
        script = scripts.pop()
        if script == "Latin" and len(letters) >= 3 and 2 * sum(not char.isascii() for char in letters) > len(letters):
            score += 1
        if any(before.islower() and after.isupper() for before, after in zip(letters, letters[1:], strict=False)):
            score += 1
        vowels = _VOWELS.get(script)
        if vowels and len(letters) >= 4 and not any(_base_letter(char) in vowels for char in letters):
            score += 1
    return score


_VISIBLE = regex.compile(r"[^\s\p{Cc}\p{Cf}\p{Z}\p{Default_Ignorable_Code_Point}\u2800]")


def has_visible_text(text: str) -> bool:
    """Whether `text` shows anything: not only whitespace, zero-width or other invisible characters.

    >>> has_visible_text("\\u200b\\u200d\\ufeff "), has_visible_text("\\u200bx")
    (False, True)
    """
    return _VISIBLE.search(text) is not None
