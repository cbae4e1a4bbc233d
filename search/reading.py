"""Reading a corpus: files, folders and zip archives of text, Markdown, CSV/TSV, JSON(L), HTML and PDF.

Bad content never raises: each problem becomes a `Problem` naming the file (and line, row or page)
and everything readable is kept. Only misuse of the API raises `ValueError`.

Decisions worth knowing:

- `source` is the path as the caller gave it (or the matching entry of `names=`); files found in a
  folder are ``folder/sub/file.txt`` and archive members ``archive.zip!inner/file.txt``.
- A plain-text or Markdown file is one document whose id is the file stem. Its title is the first
  level-1 Markdown heading (``# Title``) of a .md file and "" otherwise: the stem is already the id.
- Records without an id get ``{stem}-{n}``: n is the line for JSONL, the data row (from 1) for
  CSV/TSV and the item (from 1) for a JSON list. SQuAD paragraphs get ``{article}-{paragraph}`` (from 0).
- Ids are unique across one call: a repeated id is kept under ``id~2`` (``~3``...) with a warning.
- `ReadResult.files_read` counts the files whose content was read, archive members included and
  the archives themselves not.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import re
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import pypdf
import regex

from search.types import Document, Problem, ReadResult

logger = logging.getLogger(__name__)

MB = 1_000_000

TEXT_KEYS = ("text", "body", "content", "passage", "contents", "document", "paragraph", "context")
ID_KEYS = ("_id", "id", "doc_id", "docid")
TITLE_KEYS = ("title", "name", "heading")

# Below this size a member cannot hurt whatever its compression ratio, and small repetitive
# files (a CSV of near-identical rows) legitimately compress past 100:1.
_RATIO_FLOOR_BYTES = 1 * MB
_CHUNK_BYTES = 1 << 16
_SNIFF_BYTES = 1 << 16
_CSV_FIELD_LIMIT = 2**31 - 1
_MAX_PROBLEMS_PER_FILE = 100
_MAX_PROBLEMS_IN_ALL = 1000


@dataclass(frozen=True)
class ReadLimits:
    """Limits that keep a hostile or accidental upload from exhausting memory.

    - `max_file_bytes`: largest single file, measured uncompressed for archive members (50 MB).
      Archives on disk are streamed, so only their members (and nested archives) are measured.
    - `max_total_bytes`: uncompressed bytes of all documents' files together (200 MB); reading stops there.
    - `max_files`: files read in one call, archive members included (5000); reading stops there.
    - `max_zip_depth`: how many archives deep a member may sit: 1 reads ``a.zip!x.txt``, the default 2
      also ``a.zip!b.zip!x.txt``; 0 refuses archives.
    - `max_compression_ratio`: uncompressed size / compressed size above which a member of at
      least 1 MB is refused as a likely zip bomb (100).
    """

    max_file_bytes: int = 50 * MB
    max_total_bytes: int = 200 * MB
    max_files: int = 5000
    max_zip_depth: int = 2
    max_compression_ratio: float = 100.0

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_total_bytes", "max_files"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed; use a whole number >= 1")
        if isinstance(self.max_zip_depth, bool) or not isinstance(self.max_zip_depth, int) or self.max_zip_depth < 0:
            raise ValueError(f"max_zip_depth={self.max_zip_depth!r} is not allowed; use a whole number >= 0")
        if not self.max_compression_ratio >= 1:
            raise ValueError(f"max_compression_ratio={self.max_compression_ratio!r} is not allowed; use a number >= 1")


def read_paths(
    paths: Sequence[str | Path],
    *,
    text_column: str | None = None,
    limits: ReadLimits = ReadLimits(),  # noqa: B008 - frozen, so a shared default is safe
    names: Sequence[str] | None = None,
) -> ReadResult:
    """Read documents from files and folders; every bad file, row or line becomes a `Problem`.

    `text_column` names the text column of CSV/TSV files and the text key of JSON objects when the
    usual names (text, body, content...) are absent. `names` gives a display name for each path
    (e.g. the original name of an uploaded temporary file) used in `source` and in problems.
    Raises ValueError for misuse: no paths, a bare string instead of a list, `names` of another length.

    >>> result = read_paths(["corpus/", "extra.jsonl"])  # doctest: +SKIP
    >>> [str(problem) for problem in result.problems]  # doctest: +SKIP
    ['extra.jsonl, line 3: invalid JSON: Expecting value at column 1; line skipped']
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise ValueError(f"paths={paths!r} is a single path; pass a list of paths, e.g. [{str(paths)!r}]")
    if len(paths) == 0:
        raise ValueError("paths is empty; pass at least one file or folder")
    if names is not None and len(names) != len(paths):
        raise ValueError(f"names has {len(names)} entries but paths has {len(paths)}; give one name per path")
    if text_column is not None and not text_column.strip():
        raise ValueError(f"text_column={text_column!r} is blank; give a column name or None")
    reader = _Reader(text_column.strip() if text_column else None, limits)
    for position, path in enumerate(paths):
        display = names[position] if names is not None else str(path)
        reader.read_path(Path(path), display)
    result = reader.result()
    logger.info(
        "read %d documents from %d files with %d problems",
        len(result.documents),
        result.files_read,
        len(result.problems),
    )
    return result


class _Record(NamedTuple):
    """A document as a parser found it, before its id is made unique and its source attached."""

    doc_id: str
    text: str
    title: str = ""
    line: int | None = None


Parsed = Iterator["_Record | Problem"]
Decoded = Generator[Problem, None, "str | None"]  # yields problems, returns the text or None


class _Reader:
    """Walks paths and archives, enforces the limits and keeps document ids unique."""

    def __init__(self, text_column: str | None, limits: ReadLimits) -> None:
        self.text_column = text_column
        self.limits = limits
        self.documents: list[Document] = []
        self.problems: list[Problem] = []
        self.files_read = 0
        self.total_bytes = 0
        self._id_origin: dict[str, str] = {}
        self._next_copy: dict[str, int] = {}
        self._problem_counts: Counter[str] = Counter()
        self._unlisted: Counter[str] = Counter()
        self._halt: Problem | None = None
        self._not_read = 0

    def result(self) -> ReadResult:
        problems = list(self.problems)
        if self._halt is not None:
            problems.append(Problem(self._halt.source, f"{self._halt.message}; {self._not_read} file(s) were not read"))
        if self._unlisted["(all files)"]:
            problems.append(Problem("(all files)", f"{self._unlisted['(all files)']} more problem(s) not listed "
                                                   f"(only the first {_MAX_PROBLEMS_IN_ALL} are)"))
        return ReadResult(tuple(self.documents), tuple(problems), self.files_read)

    def read_path(self, path: Path, display: str) -> None:
        if path.is_dir():
            self._read_folder(path, display)
        elif path.is_file():
            self._read_file(path, display, _last_component(display) or path.name)
        elif path.exists():
            self._problem(Problem(display, "not a regular file or folder; skipped"))
        else:
            self._problem(Problem(display, "no such file or folder"))

    def _read_folder(self, folder: Path, display: str) -> None:
        errors: list[OSError] = []
        found = False
        for root, dirs, files in os.walk(folder, onerror=errors.append):
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
            relative = Path(root).relative_to(folder).as_posix()
            for name in sorted(files):
                if name.startswith("."):
                    continue
                found = True
                inner = name if relative == "." else f"{relative}/{name}"
                self._read_file(Path(root, name), f"{display.rstrip('/')}/{inner}", name)
        for error in errors:
            self._problem(Problem(display, f"cannot list folder {error.filename}: {error.strerror}"))
        if not found and not errors:
            self._problem(Problem(display, "no files in this folder (hidden files are skipped)"))

    def _read_file(self, path: Path, display: str, name: str) -> None:
        suffix = _suffix(name) or _suffix(path.name)
        if suffix not in SUPPORTED_SUFFIXES:
            self._problem(Problem(display, _unsupported(suffix)))
            return
        if suffix == ".zip":
            if self._halt is not None:
                self._not_read += 1
            else:
                self._read_zip(path, display, depth=1)
            return
        if not self._may_read_another(display):
            return
        try:
            size = path.stat().st_size
            if size > self.limits.max_file_bytes:
                self._problem(Problem(display, _too_big(size, "is ", self.limits.max_file_bytes)))
                return
            if not self._fits_total(size, display):
                return
            data = path.read_bytes()
        except OSError as error:
            self._problem(Problem(display, f"cannot read: {error.strerror or error}"))
            return
        self._read_leaf(data, suffix, display, PurePosixPath(name).stem)

    def _read_zip(self, file: Path | io.BytesIO, source: str, depth: int) -> None:
        if depth > self.limits.max_zip_depth:
            self._problem(Problem(source, _too_deep(depth, self.limits.max_zip_depth)))
            return
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            self._problem(Problem(source, f"not a readable zip archive ({error}); skipped"))
            return
        with archive:
            for info in sorted(archive.infolist(), key=lambda member: member.filename):
                self._read_member(archive, info, source, depth)

    def _read_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, archive_source: str, depth: int) -> None:
        name = info.filename
        source = f"{archive_source}!{name}"
        parts = [part for part in re.split(r"[\\/]+", name) if part]
        if info.is_dir() or not parts:
            return
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
            self._problem(Problem(source, "unsafe member name (absolute or '..' path); skipped"))
            return
        if parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts):
            return
        suffix = _suffix(parts[-1])
        if suffix not in SUPPORTED_SUFFIXES:
            self._problem(Problem(source, _unsupported(suffix)))
            return
        nested = suffix == ".zip"
        if nested and self._halt is not None:
            self._not_read += 1
            return
        if nested and depth + 1 > self.limits.max_zip_depth:
            self._problem(Problem(source, _too_deep(depth + 1, self.limits.max_zip_depth)))
            return
        if not nested and not self._may_read_another(source):
            return
        data = self._decompress(archive, info, source, counted=not nested)
        if data is None:
            return
        if nested:
            self._read_zip(io.BytesIO(data), source, depth + 1)
        else:
            self._read_leaf(data, suffix, source, PurePosixPath(parts[-1]).stem)

    def _decompress(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, *, counted: bool
    ) -> bytes | None:
        """The member's bytes, or None after a Problem (see `read_zip_member`)."""
        fits = (lambda size: self._fits_total(size, source)) if counted else None
        data = read_zip_member(archive, info, source, self.limits, fits=fits)
        if isinstance(data, Problem):
            self._problem(data)
            return None
        return data

    def _may_read_another(self, source: str) -> bool:
        if self._halt is not None:
            self._not_read += 1
            return False
        if self.files_read >= self.limits.max_files:
            limit = self.limits.max_files
            message = f"stopped at max_files={limit}; raise ReadLimits(max_files=...) to read more"
            self._halt = Problem(source, message)
            self._not_read += 1
            return False
        return True

    def _fits_total(self, size: int, source: str) -> bool:
        limit = self.limits.max_total_bytes
        if self.total_bytes + size <= limit:
            return True
        message = (
            f"stopped: this file would take the total past max_total_bytes={limit:,} "
            f"({_size(self.total_bytes)} read so far); raise ReadLimits(max_total_bytes=...) to read more"
        )
        self._halt = Problem(source, message)
        self._not_read += 1
        return False

    def _read_leaf(self, data: bytes, suffix: str, source: str, stem: str) -> None:
        self.files_read += 1
        self.total_bytes += len(data)
        if not data:
            self._problem(Problem(source, "empty file"))
            return
        for item in _PARSERS[suffix](data, source=source, stem=stem, text_column=self.text_column):
            if isinstance(item, Problem):
                self._problem(item)
            else:
                self._add(item, source)
        unlisted = self._unlisted.pop(source, 0)
        if unlisted:
            self.problems.append(Problem(source, f"{unlisted} more problem(s) in this file not listed"))

    def _add(self, record: _Record, source: str) -> None:
        text = _tidy(record.text)
        if not text:
            self._problem(Problem(source, "empty text; skipped", record.line))
            return
        doc_id = record.doc_id
        if doc_id in self._id_origin:
            copy = self._next_copy.get(doc_id, 2)
            while f"{doc_id}~{copy}" in self._id_origin:
                copy += 1
            self._next_copy[doc_id] = copy + 1
            renamed = f"{doc_id}~{copy}"
            message = f"duplicate id {doc_id!r} (first used at {self._id_origin[doc_id]}); kept as {renamed!r}"
            self._problem(Problem(source, message, record.line, skipped=False))
            doc_id = renamed
        self._id_origin[doc_id] = source if record.line is None else f"{source}, line {record.line}"
        self.documents.append(Document(doc_id, text, " ".join(record.title.split()), source))

    def _problem(self, problem: Problem) -> None:
        # Per file, and in all: an archive of 100,000 junk members must not become 100,000 messages.
        if len(self.problems) >= _MAX_PROBLEMS_IN_ALL:
            self._unlisted["(all files)"] += 1
            return
        if self._problem_counts[problem.source] >= _MAX_PROBLEMS_PER_FILE:
            self._unlisted[problem.source] += 1
            return
        self._problem_counts[problem.source] += 1
        self.problems.append(problem)


def read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, limits: ReadLimits, *,
                    fits: Callable[[int], bool] | None = None) -> bytes | Problem | None:
    """Return a zip member's bytes within `limits`, or a Problem saying why it was refused.

    Declared sizes and the compression ratio are checked before anything is decompressed and, since
    declared sizes can lie, again on the bytes actually produced. `fits(size)` is asked about the
    member's size so far (declared, then actual) for a budget across files; when it says no, reading
    stops and None is returned (`fits` records its own message).
    """
    packed = max(info.compress_size, 1)
    if info.flag_bits & 0x1:
        return Problem(source, "encrypted member (password-protected zip); skipped")
    if info.file_size > limits.max_file_bytes:
        return Problem(source, _too_big(info.file_size, "declares ", limits.max_file_bytes))
    if info.file_size > _RATIO_FLOOR_BYTES and info.file_size / packed > limits.max_compression_ratio:
        return Problem(source, _bomb(info.file_size / packed, limits.max_compression_ratio))
    if fits is not None and not fits(info.file_size):
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                size += len(chunk)
                if size > limits.max_file_bytes:
                    return Problem(source, _too_big(size, "decompresses to more than ", limits.max_file_bytes))
                if size > _RATIO_FLOOR_BYTES and size / packed > limits.max_compression_ratio:
                    return Problem(source, _bomb(size / packed, limits.max_compression_ratio))
                if fits is not None and size > info.file_size and not fits(size):
                    return None
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError, ValueError) as error:
        # lzma and bz2 errors are OSError/ValueError subclasses; unknown methods raise NotImplementedError.
        return Problem(source, f"cannot decompress this member ({error}); skipped")
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------
# Decoding bytes to text


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
# Control bytes that never occur in text; deleting every other byte counts them fast.
_TEXT_BYTES = bytes(byte for byte in range(256) if not (byte < 0x20 and byte not in b"\t\n\v\f\r" or byte == 0x7F))
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
_SCORE_CHARS = 4000
_GUESS_MIN_BYTES = 200


def _decode(data: bytes, source: str, declared: str | None = None) -> Decoded:
    """Yield problems met while decoding; return the text with newlines normalised, or None."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as error:
                text = data.decode(codec, errors="replace")
                message = f"invalid {label} at byte {error.start}; bad bytes replaced with U+FFFD"
                yield Problem(source, message, skipped=False)
            return (yield from _without_nuls(text, source))
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample and (utf16 := _utf16_without_bom(sample)):
        try:
            text = data.decode(utf16)
        except UnicodeDecodeError:
            pass
        else:
            yield Problem(source, f"decoded as {utf16.upper()} (no byte-order mark)", skipped=False)
            return (yield from _without_nuls(text, source))
    controls = len(sample.translate(None, _TEXT_BYTES))
    if controls > len(sample) // 20:
        message = f"looks like a binary file, not text ({controls} control bytes in the first {len(sample):,})"
        yield Problem(source, message)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text, encoding = _decode_legacy(data, declared)
        if encoding != declared:
            yield Problem(source, f"decoded as {encoding} (not valid UTF-8)", skipped=False)
    return (yield from _without_nuls(text, source))


def _without_nuls(text: str, source: str) -> Generator[Problem, None, str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    nuls = text.count("\x00")
    if nuls:
        yield Problem(source, f"removed {nuls} NUL character(s)", skipped=False)
        text = text.replace("\x00", "")
    return text


def _utf16_without_bom(sample: bytes) -> str | None:
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


def _decode_legacy(data: bytes, declared: str | None) -> tuple[str, str]:
    """Decode bytes that are not UTF-8: the declared encoding if it fits, else the most plausible candidate.

    Candidates are tried in order and the first with the lowest `_implausibility` wins. When
    charset_normalizer is installed its guess goes first for files long enough for its statistics
    (on a sentence or two it often picks e.g. mac_cyrillic for cp1251), so it breaks the ties the
    built-in check cannot (Hebrew against Cyrillic, Turkish against Western European).
    """
    candidates: list[str] = [declared] if declared else []
    if len(data) >= _GUESS_MIN_BYTES and (guess := _charset_normalizer_guess(data)):
        candidates.append(guess)
    candidates.extend(_LEGACY_ENCODINGS)
    best: tuple[int, str, str] | None = None
    seen: set[str] = set()
    for encoding in candidates:
        try:
            name = codecs.lookup(encoding).name
            text = data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
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
        import charset_normalizer
    except ImportError:
        return None
    match = charset_normalizer.from_bytes(data[:_SNIFF_BYTES]).best()
    return match.encoding if match is not None else None


_SCRIPT = regex.compile(
    r"(?P<Latin>\p{Script=Latin})|(?P<Cyrillic>\p{Script=Cyrillic})|(?P<Greek>\p{Script=Greek})"
    r"|(?P<Arabic>\p{Script=Arabic})|(?P<Hebrew>\p{Script=Hebrew})|(?P<Thai>\p{Script=Thai})"
    r"|(?P<CJK>[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Bopomofo}])"
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
    read as cp1252 gives 'Ïðèâåò'); it cannot weigh letter frequencies the way charset_normalizer can.
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
        if len(scripts) > 1:
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


# ---------------------------------------------------------------------------------------------
# Parsers: bytes of one file -> records and problems


def _parse_plain(data: bytes, *, source: str, stem: str, text_column: str | None) -> Parsed:
    text = yield from _decode(data, source)
    if text is not None:
        yield _whole_file(text, source, stem, "")


def _parse_markdown(data: bytes, *, source: str, stem: str, text_column: str | None) -> Parsed:
    text = yield from _decode(data, source)
    if text is not None:
        yield _whole_file(text, source, stem, _markdown_title(text))


def _whole_file(text: str, source: str, stem: str, title: str) -> _Record | Problem:
    if not text.strip():
        return Problem(source, "no text (the file holds only whitespace)")
    return _Record(stem, text, title)


_ATX_HEADING = re.compile(r" {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(```|~~~)")


def _markdown_title(text: str) -> str:
    """The first level-1 ATX heading outside code fences, or ""."""
    fence = None
    for line in text.split("\n"):
        opening = _FENCE.match(line)
        if opening:
            fence = None if fence == opening.group(1) else fence or opening.group(1)
            continue
        if fence is None and (heading := _ATX_HEADING.fullmatch(line)):
            return heading.group(1).strip()
    return ""


def _parse_table(data: bytes, *, source: str, stem: str, text_column: str | None, delimiter: str) -> Parsed:
    """CSV (RFC 4180 quoting; ';', tab or '|' also accepted when the header has no comma) or TSV
    (fields never quoted, as in MS MARCO and the IANA definition, so a passage may start with a quote)."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    text = yield from _decode(data, source)
    if text is None:
        return
    if delimiter == ",":
        header_line = text.lstrip("\n").split("\n", 1)[0]
        if "," not in header_line:
            delimiter = next((other for other in (";", "\t", "|") if other in header_line), ",")
    header: list[str] | None = None
    columns = text_index = id_index = title_index = None
    row_number = 0
    for line, last_line, row in _csv_rows(text, delimiter, quoting):
        if isinstance(row, str):
            if header is not None:
                row_number += 1
            reason = "an unclosed quote runs to the end of the file" if "unexpected end of data" in row else row
            yield Problem(source, f"malformed row ({reason}); skipped", line)
            continue
        if not any(field.strip() for field in row):
            continue
        if header is None:
            header = [field.strip() for field in row]
            columns = len(header)
            text_index = _find_key(header, text_column, TEXT_KEYS)
            if text_index is None:
                yield Problem(source, _no_text_column(header, text_column, "columns"), line)
                return
            id_index = _find_key(header, None, ID_KEYS)
            title_index = _find_key(header, None, TITLE_KEYS)
            continue
        row_number += 1
        if len(row) != columns:
            hint = f" spanning lines {line}-{last_line} (an unclosed quote?)" if last_line > line else ""
            message = f"expected {columns} fields like the header, found {len(row)}{hint}; row skipped"
            yield Problem(source, message, line)
            continue
        if not row[text_index].strip():
            yield Problem(source, f"empty text in column {header[text_index]!r}; row skipped", line)
            continue
        doc_id = row[id_index].strip() if id_index is not None else ""
        title = row[title_index] if title_index is not None else ""
        yield _Record(doc_id or f"{stem}-{row_number}", row[text_index], title, line)
    if header is None:
        yield Problem(source, "no header and no rows")
    elif row_number == 0:
        yield Problem(source, "a header but no rows", 1)


def _csv_rows(text: str, delimiter: str, quoting: int) -> Iterator[tuple[int, int, list[str] | str]]:
    """(first line, last line, fields or an error) per row; after a bad row, parsing resumes on the next line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # One field may hold a whole book; max_file_bytes bounds it. The limit is process-wide, so it is
    # only ever raised (never restored), which is harmless to other users and safe across threads.
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    start = 0
    while start < len(lines):
        remaining = (lines[index] + "\n" for index in range(start, len(lines)))
        reader = csv.reader(remaining, delimiter=delimiter, quoting=quoting, strict=True)
        consumed = 0
        try:
            for row in reader:
                first = start + consumed + 1
                consumed = reader.line_num
                yield first, start + consumed, row
            return
        except csv.Error as error:
            failed = start + consumed + 1
            yield failed, failed, str(error)
            start = failed


def _find_key(keys: Sequence[str], wanted: str | None, candidates: Sequence[str]) -> int | None:
    """Index of `wanted` (exact, then case-insensitive) or of the first candidate present."""
    lowered = [key.strip().lower() for key in keys]
    if wanted is not None:
        if wanted in keys:
            return list(keys).index(wanted)
        return lowered.index(wanted.lower()) if wanted.lower() in lowered else None
    for candidate in candidates:
        if candidate in lowered:
            return lowered.index(candidate)
    return None


def _no_text_column(keys: Sequence[str], text_column: str | None, what: str) -> str:
    listed = ", ".join(repr(key) for key in keys) or "none"
    if text_column is not None:
        return f"no {what[:-1]} named {text_column!r} (text_column={text_column!r}); the {what} are: {listed}"
    return (
        f"no text {what[:-1]} found (looked for {', '.join(TEXT_KEYS)}); the {what} are: {listed}. "
        f"Name the text {what[:-1]} with text_column='...' (CLI: --text-column ...)"
    )


def _parse_jsonl(data: bytes, *, source: str, stem: str, text_column: str | None) -> Parsed:
    text = yield from _decode(data, source)
    if text is None:
        return
    found = False
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        found = True
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            yield Problem(source, f"invalid JSON: {error.msg} at column {error.colno}; line skipped", line)
            continue
        except RecursionError:
            yield Problem(source, "JSON nested too deeply; line skipped", line)
            continue
        yield _record_from_value(value, f"{stem}-{line}", text_column, source, line, "")
    if not found:
        yield Problem(source, "no text (the file holds only whitespace)")


def _parse_json(data: bytes, *, source: str, stem: str, text_column: str | None) -> Parsed:
    text = yield from _decode(data, source)
    if text is None:
        return
    if not text.strip():
        yield Problem(source, "no text (the file holds only whitespace)")
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        yield Problem(source, f"invalid JSON: {error.msg} at column {error.colno}; file skipped", error.lineno)
        return
    except RecursionError:
        yield Problem(source, "JSON nested too deeply; file skipped")
        return
    if isinstance(value, dict) and _is_squad(value):
        yield from _squad_records(value["data"], source)
        return
    if isinstance(value, dict):
        wrapped = next((key for key in ("documents", "corpus", "passages", "docs", "data") if key in value), None)
        if wrapped is not None and isinstance(value[wrapped], list):
            value = value[wrapped]
        elif _find_key(list(value), text_column, TEXT_KEYS) is not None:
            value = [value]
    if not isinstance(value, list):
        keys = ", ".join(repr(key) for key in value) if isinstance(value, dict) else type(value).__name__
        yield Problem(
            source,
            f"expected a list of documents, SQuAD {{'data': [...]}} or an object with a text field; found {keys}",
        )
        return
    if not value:
        yield Problem(source, "an empty list: no documents")
    for number, item in enumerate(value, start=1):
        yield _record_from_value(item, f"{stem}-{number}", text_column, source, None, f"item {number}: ")


def _is_squad(value: dict) -> bool:
    articles = value.get("data")
    return isinstance(articles, list) and any(
        isinstance(article, dict) and "paragraphs" in article for article in articles
    )


def _squad_records(articles: list, source: str) -> Parsed:
    """One record per paragraph, titled by its article."""
    for article_index, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            yield Problem(source, f"data[{article_index}] is not a SQuAD article (no 'paragraphs' list); skipped")
            continue
        title = article.get("title")
        title = title if isinstance(title, str) else ""
        for paragraph_index, paragraph in enumerate(paragraphs):
            where = f"data[{article_index}].paragraphs[{paragraph_index}]"
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not context.strip():
                yield Problem(source, f"{where} has no 'context' text; skipped")
                continue
            doc_id = _id_text(paragraph.get("id")) or f"{article_index}-{paragraph_index}"
            yield _Record(doc_id, context, title)


def _record_from_value(
    value: object, fallback_id: str, text_column: str | None, source: str, line: int | None, where: str
) -> _Record | Problem:
    """A record from a JSON string or object (BEIR `_id`/`title`/`text`, or `id` + `text`/`contents`...)."""
    if isinstance(value, str):
        if not value.strip():
            return Problem(source, f"{where}empty text; skipped", line)
        return _Record(fallback_id, value, "", line)
    if not isinstance(value, dict):
        return Problem(source, f"{where}expected an object or a string, found {_json_type(value)}; skipped", line)
    keys = list(value)
    text_index = _find_key(keys, text_column, TEXT_KEYS)
    if text_index is None:
        return Problem(source, where + _no_text_column(keys, text_column, "keys"), line)
    text_key = keys[text_index]
    text = value[text_key]
    if isinstance(text, list) and all(isinstance(part, str) for part in text):
        text = "\n\n".join(text)
    if not isinstance(text, str):
        return Problem(source, f"{where}{text_key!r} holds {_json_type(text)}, not text; skipped", line)
    if not text.strip():
        return Problem(source, f"{where}empty text in {text_key!r}; skipped", line)
    id_index = _find_key(keys, None, ID_KEYS)
    doc_id = _id_text(value[keys[id_index]]) if id_index is not None else None
    title_index = _find_key(keys, None, TITLE_KEYS)
    title = value[keys[title_index]] if title_index is not None else ""
    return _Record(doc_id or fallback_id, text, title if isinstance(title, str) else "", line)


def _id_text(value: object) -> str | None:
    """A JSON id as a stripped string (numbers too), or None when missing or unusable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (str, int, float)):
        return str(value).strip() or None
    return None


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _parse_html(data: bytes, *, source: str, stem: str, text_column: str | None) -> Parsed:
    declared = _HTML_CHARSET.search(data[:4096])
    text = yield from _decode(data, source, declared.group(1).decode("ascii") if declared else None)
    if text is None:
        return
    parser = _VisibleText()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError) as error:  # html.parser is lenient; this is belt and braces
        yield Problem(source, f"cannot parse this HTML ({error}); skipped")
        return
    body, title = parser.text(), parser.title()
    if not body:
        yield Problem(source, "no visible text in this HTML page")
        return
    yield _Record(stem, body, title)


class _VisibleText(HTMLParser):
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
        super().__init__(convert_charrefs=True)
        self._chunks: list[str] = []
        self._title: list[str] = []
        self._hidden: Counter[str] = Counter()
        self._in_head = False
        self._in_title = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self._in_head = True
        elif self._in_head and tag not in self.HEAD_ONLY:
            self._in_head = False  # a body element implicitly closes an unclosed <head>
        if tag == "title":
            self._in_title = not self._title  # only the first: an inline <svg> may hold titles of its own
        elif tag in self.HIDDEN:
            self._hidden[tag] += 1
        elif tag == "pre":
            self._pre += 1
        self._break(tag)
        if tag in ("td", "th"):
            self._chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        elif tag == "title":
            self._in_title = False
        elif tag in self.HIDDEN and self._hidden[tag]:
            self._hidden[tag] -= 1
        elif tag == "pre" and self._pre:
            self._pre -= 1
        self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        elif not self._in_head and not any(self._hidden.values()):
            self._chunks.append(data if self._pre else re.sub(r"\s+", " ", data))

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


def _parse_pdf(data: bytes, *, source: str, stem: str, text_column: str | None) -> Parsed:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            yield Problem(source, "encrypted PDF that needs a password; save an unprotected copy and read that")
            return
        pages = list(reader.pages)
    except Exception as error:  # pypdf raises many kinds of errors on damaged files
        yield Problem(source, f"cannot read this PDF ({type(error).__name__}: {error}); skipped")
        return
    texts: list[str] = []
    blank: list[int] = []
    for number, page in enumerate(pages, start=1):
        try:
            page_text = _tidy(page.extract_text() or "")
        except Exception as error:  # as above, per page so the other pages are kept
            yield Problem(source, f"cannot extract text from page {number} ({type(error).__name__}: {error})", number)
            continue
        if page_text:
            texts.append(page_text)
        else:
            blank.append(number)
    if not texts:
        yield Problem(source, f"no text in any of its {len(pages)} page(s); a scanned PDF needs OCR first")
        return
    for number in blank:
        yield Problem(source, f"page {number} has no text (a scanned image?)", number, skipped=False)
    yield _Record(stem, "\n\n".join(texts), _pdf_title(reader))


def _pdf_title(reader: object) -> str:
    try:
        title = reader.metadata.title  # type: ignore[attr-defined]
    except Exception:  # broken metadata must not lose the text
        return ""
    return title if isinstance(title, str) else ""


_PARSERS: dict[str, Callable[..., Parsed]] = {
    ".txt": _parse_plain,
    ".md": _parse_markdown,
    ".markdown": _parse_markdown,
    ".csv": partial(_parse_table, delimiter=","),
    ".tsv": partial(_parse_table, delimiter="\t"),
    ".jsonl": _parse_jsonl,
    ".json": _parse_json,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".pdf": _parse_pdf,
}
SUPPORTED_SUFFIXES: tuple[str, ...] = (*_PARSERS, ".zip")


# ---------------------------------------------------------------------------------------------
# Small helpers


def _tidy(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()


def _last_component(display: str) -> str:
    return re.split(r"[\\/]", display.rstrip("\\/"))[-1]


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _unsupported(suffix: str) -> str:
    kind = f"file type {suffix}" if suffix else "file without an extension"
    return f"unsupported {kind}; supported: {', '.join(SUPPORTED_SUFFIXES)}"


def _size(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB // 10 else f"{size:,} bytes"


def _too_big(size: int, verb: str, limit: int) -> str:
    return (
        f"file {verb}{_size(size)}, over max_file_bytes={limit:,}; skipped; "
        "raise ReadLimits(max_file_bytes=...) to read it"
    )


def _bomb(ratio: float, limit: float) -> str:
    return (
        f"compression ratio {ratio:,.0f}:1 is over max_compression_ratio={limit:g} (a likely zip bomb); "
        "not decompressed; raise ReadLimits(max_compression_ratio=...) if the archive is trusted"
    )


def _too_deep(depth: int, limit: int) -> str:
    return (
        f"archive nested {depth} deep is past max_zip_depth={limit}; skipped; "
        "raise ReadLimits(max_zip_depth=...) to read it"
    )
