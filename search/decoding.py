"""Bytes to text, for corpora and judgments alike.

`decode_text` tries, in order:

1. a byte-order mark (UTF-8, UTF-32, UTF-16);
2. UTF-32 or UTF-16 without one, only on strong evidence: NULs in the places one byte order puts them
   (UTF-32: the top bytes of every code unit; UTF-16: the high bytes of ASCII characters);
3. the 7-bit encodings marked by escape sequences (ISO-2022-JP, ISO-2022-KR, HZ);
4. UTF-8, unless the bytes hold many control characters (then UTF-16 without NULs, as CJK text has, or
   a binary file);
5. unless the caller wants UTF-8 only: the encoding given for the upload, else the one the file declares
   (HTML), else a guess among the common legacy code pages (Windows, ISO 8859, KOI8, DOS and Mac
   Cyrillic/Latin, GB18030, Big5, Shift_JIS, EUC-JP, EUC-KR/cp949) and UTF-16, ranked by
   `search.plausibility` (the legacy CJK encodings before UTF-16, so GBK text of even length is never
   read as UTF-16). A file whose lines are in different encodings (UTF-8 lines among cp1252 ones,
   cp1251 lines among cp1252 ones) is decoded line by line when that reads better.

Anything that is not plain UTF-8 is reported as a warning naming the encoding, and a guess of low
confidence says so and how to give the encoding instead. Bad bytes never raise: a file that is not
text comes back as None with a Problem saying why.
"""

from __future__ import annotations

import codecs
import logging
import unicodedata
from collections.abc import Iterator
from itertools import islice
from typing import NamedTuple

import charset_normalizer
import regex

from .plausibility import SCORE_CHARS, Reading, implausibility, rank_decodings
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
# The candidates of a guess, in order of preference: ties go to the earlier one. Windows code pages
# first (the most common), the ISO and DOS/Mac ones after their Windows sibling, the multi-byte CJK
# encodings last but before UTF-16, which decodes most even-length byte strings somehow.
LEGACY_ENCODINGS: tuple[str, ...] = (
    "cp1252", "iso8859-15", "cp1250", "iso8859-2", "cp1251", "koi8-r", "koi8-u", "iso8859-5", "cp866",
    "mac-cyrillic", "cp1253", "iso8859-7", "cp1254", "cp1257", "iso8859-13", "cp1255", "cp1256", "iso8859-6",
    "cp874", "mac-roman", "cp850", "gb18030", "cp950", "big5hkscs", "cp932", "euc_jp", "cp949",
)
_ESCAPE_ENCODINGS = ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_kr")
_UTF16 = ("utf-16-le", "utf-16-be")
# Codecs Python calls text encodings that no web page or export means: they raise on any input
# ('undefined'), decode in quadratic time (punycode, idna) or turn escapes into text.
_NOT_CHARSETS = frozenset({"undefined", "punycode", "idna", "utf-7", "unicode-escape", "raw-unicode-escape"})
_GUESS_MIN_BYTES = 200
# Characters of lines scored one by one when a file is decoded line by line: past them, lines take
# UTF-8 when valid, else the guessed encoding.
_MAX_SCORED_CHARS = 200_000
# Files of more lines are decoded whole: line by line costs a Python step per line.
_MAX_LINES_BY_LINE = 200_000
_SNIFF_LINES = 2000
_ODD = frozenset({"Cc", "Co", "Cs", "Cn"})


class DecodedText(NamedTuple):
    """The text with newlines normalised to ``\\n`` (None when the bytes are not text), what was met, and
    the encoding used (``utf-8``, ``cp1251``, ``utf-8+cp1252`` for a file decoded line by line...)."""

    text: str | None
    problems: tuple[Problem, ...] = ()
    encoding: str = ""


def decode_text(data: bytes, source: str, declared: str | None = None, *, legacy: bool = True,
                encoding: str | None = None) -> DecodedText:
    """Decode a file's bytes, reporting every guess as a warning `Problem` naming `source`.

    `declared` is the charset the file names for itself (e.g. from ``<meta charset>``); an unknown or
    unusable name falls back to detection. `encoding` is the one the user gave for the upload (see
    `check_encoding`): it replaces the guess for files that have no byte-order mark and are not UTF-8.
    With `legacy=False` (judgments, whose ids must match exactly) bytes that are not UTF-8 give text
    None and a Problem asking for UTF-8.

    >>> decode_text("Привет, мир. ".encode("cp1251") * 50, "a.txt").problems[0].message
    'decoded as cp1251 (not valid UTF-8)'
    """
    problems: list[Problem] = []
    text, used = _decode(data, source, declared, legacy, encoding, problems)
    if text is not None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        nuls = text.count("\x00")
        if nuls:
            problems.append(Problem(source, f"removed {nuls} NUL character(s)", skipped=False))
            text = text.replace("\x00", "")
    return DecodedText(text, tuple(problems), used)


def check_encoding(encoding: str) -> str:
    """The codec name of an encoding a user gives for an upload (``cp1255``, ``windows-1251``,
    ``shift_jis``...); raises ValueError naming the value when Python has no text codec of that name.

    >>> check_encoding("Windows-1255")
    'cp1255'
    """
    codec = usable_charset(encoding)
    if codec is None:
        raise ValueError(f"encoding={encoding!r} is not a text encoding Python knows; give one such as "
                         "cp1252, cp1251, cp1255, gb18030, shift_jis, euc-kr or utf-16")
    return codec


def _decode(data: bytes, source: str, declared: str | None, legacy: bool, override: str | None,
            problems: list[Problem]) -> tuple[str | None, str]:
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as error:
                problems.append(Problem(source, f"invalid {label} at byte {error.start}; bad bytes replaced with "
                                                "U+FFFD", skipped=False))
                return data.decode(codec, errors="replace"), codec
    override = check_encoding(override) if override else None
    if override is not None and override.startswith(("utf-16", "utf-32")):
        return _decode_as(data, source, override, problems), override
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample and (found := _utf_by_nuls(data, sample)):
        problems.append(Problem(source, f"decoded as {found[0].upper()} (no byte-order mark)", skipped=False))
        return found[1], found[0]
    if b"\x1b" in sample or b"~{" in sample:
        if found := _escape_encoded(data):
            problems.append(Problem(source, f"decoded as {found[0]} (escape sequences)", skipped=False))
            return found[1], found[0]
    controls = len(sample.translate(None, _TEXT_BYTES))
    if controls > len(sample) // 20:
        utf16 = _utf16_readings(data)
        best = rank_decodings(utf16).readings[0] if utf16 else None
        if best is not None and best.implausibility * 10 <= len(best.text[:SCORE_CHARS]):
            problems.append(Problem(source, f"decoded as {best.codec.upper()} (no byte-order mark)", skipped=False))
            return best.text, best.codec
        problems.append(Problem(source, f"looks like a binary file, not text ({controls} control bytes in the "
                                        f"first {len(sample):,})"))
        return None, ""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        if not legacy:
            problems.append(Problem(source, f"{source} is not UTF-8 text (byte {error.start}: {error.reason}); "
                                            "save it as UTF-8"))
            return None, ""
    else:
        charset = usable_charset(declared)
        if charset not in (None, "utf-8") and not data.isascii():
            problems.append(Problem(source, f"declares {declared} but is valid UTF-8; read as UTF-8", skipped=False))
        return text, "utf-8"
    if override is not None:
        text = _decode_as(data, source, override, problems)
        problems.append(Problem(source, f"decoded as {override}, the encoding given for the upload", skipped=False))
        return text, override
    return _decode_legacy(data, source, declared, problems)


def _decode_as(data: bytes, source: str, codec: str, problems: list[Problem]) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        text = data.decode(codec, errors="replace")
        problems.append(Problem(source, f"not valid {codec} from byte {error.start} on; "
                                        f"{text.count(chr(0xFFFD))} bad byte sequence(s) replaced with U+FFFD",
                                skipped=False))
        return text


def usable_charset(declared: str | None) -> str | None:
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


# -- Unicode without a byte-order mark -------------------------------------------------------------------

def _utf_by_nuls(data: bytes, sample: bytes) -> tuple[str, str] | None:
    """(codec, text) for UTF-32 or UTF-16 without a BOM whose NULs fit one byte order, else None.

    UTF-32 puts a NUL in the top byte of every code unit and at most 0x10 in the next; UTF-16 puts one
    in the high byte of every ASCII character (space, digits, punctuation), so NULs sit at odd offsets
    (little-endian) or even ones (big-endian) and hardly ever at the other.
    """
    if len(data) % 4 == 0 and len(sample) >= 8:
        quads = len(sample) // 4
        for codec, top, next_byte in (("utf-32-le", 3, 2), ("utf-32-be", 0, 1)):
            if sample[top::4].count(0) == quads and max(sample[next_byte::4]) <= 0x10:
                text = _strict(data, codec)
                if text is not None and _clean(text):
                    return codec, text
    pairs = len(sample) // 2
    if len(data) % 2 or pairs < 2:
        return None
    even, odd = sample[0 : 2 * pairs : 2].count(0), sample[1 : 2 * pairs : 2].count(0)
    minimum = max(2, pairs // 200)
    if odd >= minimum and even * 8 <= odd:
        codec = "utf-16-le"
    elif even >= minimum and odd * 8 <= even:
        codec = "utf-16-be"
    else:
        return None
    text = _strict(data, codec)
    return (codec, text) if text is not None and _clean(text) else None


def _utf16_readings(data: bytes) -> list[tuple[str, str]]:
    """The byte orders in which `data` reads as UTF-16 text: strict, with letters and without unassigned,
    private-use or control characters. Latin text in a legacy code page read so is mostly rare CJK
    characters ("Bush hid the facts"), which `search.plausibility` ranks below its legacy reading."""
    if len(data) % 2 or len(data) < 4:
        return []
    readings = []
    for codec in _UTF16:
        text = _strict(data, codec)
        if text is not None and _clean(text) and regex.search(r"\p{L}", text[:SCORE_CHARS]):
            readings.append((codec, text))
    return readings


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def _clean(text: str) -> bool:
    """No unassigned, private-use, surrogate or control characters (but whitespace) in the first part."""
    return not any(unicodedata.category(char) in _ODD and char not in "\t\n\r\f\v"
                   for char in text[:SCORE_CHARS] if char > "\x7f" or char < " ")


def _escape_encoded(data: bytes) -> tuple[str, str] | None:
    """(codec, text) for ISO-2022-JP/KR or HZ: 7-bit text whose escape sequences switch to CJK."""
    if not data.isascii():
        return None
    codecs_to_try = (*_ESCAPE_ENCODINGS, "hz") if b"~{" in data else _ESCAPE_ENCODINGS
    for codec in codecs_to_try:
        if codec != "hz" and b"\x1b" not in data:
            continue
        text = _strict(data, codec)
        if text is not None and "\x1b" not in text and not text.isascii() and _clean(text):
            return codec, text
    return None


# -- legacy code pages -----------------------------------------------------------------------------------

def _decode_legacy(data: bytes, source: str, declared: str | None, problems: list[Problem]) -> tuple[str, str]:
    """Bytes that are not UTF-8: the declared encoding if they decode in it, else the best reading, whole
    or line by line."""
    charset = usable_charset(declared)
    if charset is not None and charset != "utf-8":
        text = _strict(data, charset)
        if text is not None:
            return text, charset
    unknown = ""
    if declared and charset is None:
        unknown = f"; the declared charset {declared!r} is not one Python can use"
    elif declared:
        unknown = f"; not in its declared charset {declared}"
    guess = _guess(data)
    best = guess.readings[0]
    by_line = best.codec not in _UTF16 and data.count(b"\n") < _MAX_LINES_BY_LINE
    # Without a valid multi-byte UTF-8 sequence anywhere, no line can be UTF-8 beyond ASCII (a fast test).
    if by_line and not data.decode("utf-8", errors="ignore").isascii() and _has_utf8_line(data):
        legacy = b"\n".join(islice((line for line in _byte_lines(data) if _strict(line, "utf-8") is None),
                                   _SNIFF_LINES))
        decoded, counts = _line_by_line(data, _guess(legacy) if legacy.strip() else guess, utf8=True)
        if len(counts) > 1:
            problems.append(Problem(source, f"decoded line by line ({_shown(counts)}): its lines are in "
                                            f"different encodings{unknown}", skipped=False))
            return decoded, "+".join(counts)
    text = _strict(data, best.codec) if len(data) > _SNIFF_BYTES else best.text
    if text is None:  # the sample decoded, the whole file does not: the next reading that does
        text, best = next(((whole, reading) for reading in guess.readings[1:]
                           if (whole := _strict(data, reading.codec)) is not None),
                          (data.decode(best.codec, errors="replace"), best))
    if by_line and best.implausibility and best.codec not in _UTF16:
        refined, counts = _line_by_line(data, guess, utf8=False)
        if len(counts) > 1 and implausibility(refined[:SCORE_CHARS]) < implausibility(text[:SCORE_CHARS]):
            problems.append(Problem(source, f"decoded line by line ({_shown(counts)}): not valid UTF-8, and its "
                                            f"lines read best in different encodings{unknown}", skipped=False))
            return refined, "+".join(counts)
    label = best.codec.upper() if best.codec in _UTF16 else best.codec
    why = "no byte-order mark" if best.codec in _UTF16 else f"not valid UTF-8{unknown}"
    message = f"decoded as {label} ({why})"
    if guess.low_confidence:
        runner = guess.readings[1].codec
        message += (f"; a guess of low confidence ({runner} reads almost as well): if the text looks wrong, give "
                    f"the upload's encoding, e.g. {runner} (the app's 'Encoding of files without a BOM' under "
                    f"Formats and limits, the CLI's --encoding {runner})")
    problems.append(Problem(source, message, skipped=False))
    return text, best.codec


def _byte_lines(data: bytes) -> Iterator[bytes]:
    """The lines of `data` as ``data.split(b"\\n")`` gives them, one at a time."""
    start = 0
    while (end := data.find(b"\n", start)) != -1:
        yield data[start:end]
        start = end + 1
    yield data[start:]


def _has_utf8_line(data: bytes) -> bool:
    """Whether a line beyond ASCII is valid UTF-8 and reads as plausible text."""
    for line in _byte_lines(data):
        if not line.isascii() and (text := _strict(line, "utf-8")) is not None \
                and implausibility(text[:SCORE_CHARS]) == 0:
            return True
    return False


def _shown(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} as {codec}" for codec, count in counts.items())


class _Guess(NamedTuple):
    readings: tuple[Reading, ...]
    low_confidence: bool


def _guess(data: bytes) -> _Guess:
    """The readings of `data` (its first 64 KB, cut at a line end) from most to least plausible."""
    sample = data
    if len(data) > _SNIFF_BYTES:
        cut = data.rfind(b"\n", 0, _SNIFF_BYTES)
        sample = data[: cut if cut > 0 else _SNIFF_BYTES]
    candidates = list(LEGACY_ENCODINGS)
    if len(sample) >= _GUESS_MIN_BYTES and (guess := _charset_normalizer_guess(sample)) and guess not in candidates:
        candidates.append(guess)
    decodings = [(codec, text) for codec in candidates if (text := _strict(sample, codec)) is not None]
    decodings += _utf16_readings(sample)
    if not decodings:
        return _Guess((Reading("latin-1", sample.decode("latin-1"), 0),), True)
    ranked = rank_decodings(decodings)
    return _Guess(ranked.readings, ranked.low_confidence)


def _line_by_line(data: bytes, guess: _Guess, *, utf8: bool) -> tuple[str, dict[str, int]]:
    """Each line in the encoding that reads it best: UTF-8 when `utf8` and it is valid and reads no worse,
    else the guessed encoding, else (for lines that read badly in it, within `_MAX_SCORED_CHARS`) another
    of the guess's readings; and how many non-ASCII lines each encoding took."""
    best = guess.readings[0].codec
    counts: dict[str, int] = {}
    decoded = []
    budget = _MAX_SCORED_CHARS
    for line in _byte_lines(data):
        if line.isascii():
            decoded.append(line.decode("ascii"))
            continue
        as_utf8 = _strict(line, "utf-8") if utf8 else None
        codec, text = best, _strict(line, best)
        if budget > 0:
            score = None if text is None else implausibility(text[:SCORE_CHARS])
            budget -= len(line)
            if as_utf8 is not None and (score is None or implausibility(as_utf8[:SCORE_CHARS]) <= score):
                codec, text, score = "utf-8", as_utf8, 0
            if score is None or score > 0:
                readings = [(reading.codec, whole) for reading in guess.readings
                            if (whole := _strict(line, reading.codec)) is not None]
                top = rank_decodings(readings).readings[0] if readings else None
                if top is not None and (score is None or top.implausibility < score):
                    codec, text = top.codec, top.text
        elif as_utf8 is not None:
            codec, text = "utf-8", as_utf8
        if text is None:
            text = line.decode(best, errors="replace")
        counts[codec] = counts.get(codec, 0) + 1
        decoded.append(text)
    return "\n".join(decoded), counts


def _charset_normalizer_guess(data: bytes) -> str | None:
    try:
        match = charset_normalizer.from_bytes(data).best()
    except Exception:  # a guess is optional: the built-in candidates still decode the file
        logger.warning("charset-normalizer failed on a file; guessing without it", exc_info=True)
        return None
    return usable_charset(match.encoding) if match is not None else None


_SURROGATE = regex.compile(r"[\ud800-\udfff]")


def valid_unicode(text: str) -> tuple[str, int]:
    """`text` with every lone surrogate replaced by U+FFFD, and how many were replaced. Pairs written as two
    halves (``\\ud83d\\ude00``) become the character they encode. Text that leaves a reader must encode as
    UTF-8, which no lone surrogate can (a JSON ``\\ud800`` escape or a PDF's ToUnicode map can make one).

    >>> valid_unicode("a\\ud800b \\ud83d\\ude00")
    ('a\ufffdb 😀', 1)
    """
    if _SURROGATE.search(text) is None:
        return text, 0
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return fixed, fixed.count("\ufffd") - text.count("\ufffd")


def replaced_surrogates(count: int) -> str:
    """The warning for `count` lone surrogates replaced in one file."""
    return f"replaced {count} lone surrogate(s) (half of a UTF-16 pair, e.g. a JSON \\ud800 escape) with U+FFFD"


_VISIBLE = regex.compile(r"[^\s\p{Cc}\p{Cf}\p{Z}\p{Default_Ignorable_Code_Point}\u2800]")


def has_visible_text(text: str) -> bool:
    """Whether `text` shows anything: not only whitespace, zero-width or other invisible characters.

    >>> has_visible_text("\\u200b\\u200d\\ufeff "), has_visible_text("\\u200bx")
    (False, True)
    """
    return _VISIBLE.search(text) is not None
