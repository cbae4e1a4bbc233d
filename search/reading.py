"""Reading a corpus: files, folders and zip archives of text, Markdown, CSV/TSV, JSON(L), HTML and PDF.

Bad content never raises: each problem becomes a `Problem` naming the file (and line, row or page)
and everything readable is kept. Every file is read inside a boundary that turns any error, even a
bug in a parser or running out of memory, into a Problem for that file alone, and within a per-file
budget (`ReadLimits`: time, PDF pages, JSON nesting, decompressed bytes) and the read's (files, bytes,
documents, characters of text, archive entries). Only misuse of the API raises `ValueError`.

This module turns files into documents, enforces the document limits and keeps ids unique; walking
paths, folders and archives lives in `search.walker` (shared with the judgments loader), safe zip
members in `search.files`, decoding in `search.decoding`, one parser per format in `search.formats`.

Decisions worth knowing:

- `source` is the path as the caller gave it (or the matching entry of `names=`); files found in a
  folder are ``folder/sub/file.txt`` and archive members ``archive.zip!inner/file.txt``.
- A plain-text or Markdown file is one document whose id is the file stem. Its title is the first
  level-1 Markdown heading (``# Title``) of a .md file and "" otherwise: the stem is already the id.
- Records without an id get ``{stem}-{n}``: n is the line for JSONL, the data row (from 1) for
  CSV/TSV and the item (from 1) for a JSON list. SQuAD paragraphs get ``{article}-{paragraph}`` (from 0;
  see `search.formats.squad`).
- Ids are unique across one call: a repeated id is kept under ``id~2`` (``~3``...) with a warning.
- A text of only whitespace or invisible characters (zero-width spaces...) is empty and skipped.
- Ids, texts, titles, sources and problems are valid Unicode: a lone surrogate (a JSON ``\\ud800``
  escape, a PDF's broken ToUnicode map) becomes U+FFFD, counted in a warning for its file.
- `ReadResult.files_read` counts the files whose content was read, archive members included and
  the archives themselves not.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from .decoding import check_encoding, has_visible_text, replaced_surrogates, valid_unicode
from .files import short_error
from .formats import PARSERS, FileContext, Record
from .formats.base import tidy
from .ids import UniqueIds
from .limits import LIMIT_ENV, FileBudget, LimitExceeded, ReadLimits, raise_hint
from .types import Document, Problem, ReadResult
from .walker import ARCHIVE, Entry, Listing, Walker

__all__ = ["LIMIT_ENV", "SUPPORTED_SUFFIXES", "ReadLimits", "read_paths"]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: tuple[str, ...] = (*PARSERS, ARCHIVE)
_MAX_PROBLEMS_PER_FILE = 100
_MAX_PROBLEMS_IN_ALL = 1000


MAX_TEXT_COLUMN_CHARS = 200  # longer than any real column name or JSON key


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_text_column(text_column: str | None) -> str | None:
    """The text column a user names for an upload (the CSV/TSV column or JSON key of the text), stripped;
    None, which finds it by name (text, body, content…), for None or a blank one. Raises ValueError naming
    the value and the fix for one over MAX_TEXT_COLUMN_CHARS characters or holding a control character.

    >>> check_text_column("  Beschreibung "), check_text_column("  ")
    ('Beschreibung', None)
    """
    if text_column is None or not text_column.strip():
        return None
    name = text_column.strip()
    shown = repr(name) if len(name) <= 60 else f"{name[:60]!r}… ({len(name):,} characters)"
    if len(name) > MAX_TEXT_COLUMN_CHARS:
        raise ValueError(f"text_column={shown} is longer than {MAX_TEXT_COLUMN_CHARS} characters; give the name of "
                         "the column (or JSON key) that holds the text as its header writes it, or leave it empty "
                         "to find it by name")
    # Control characters, and the bidirectional overrides and isolates that make a name display as another
    # (other format characters stay: ZWNJ and ZWJ belong in Persian or Indic names).
    control = next((char for char in name if unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS), None)
    if control is not None:
        raise ValueError(f"text_column={shown} holds the control character {control!r}; give the name of the column "
                         "(or JSON key) that holds the text as its header writes it, or leave it empty to find it "
                         "by name")
    return name


def read_paths(
    paths: Sequence[str | Path],
    *,
    text_column: str | None = None,
    limits: ReadLimits | None = None,
    names: Sequence[str] | None = None,
    encoding: str | None = None,
) -> ReadResult:
    """Read documents from files and folders; every bad file, row or line becomes a `Problem`.

    `text_column` names the text column of CSV/TSV files and the text key of JSON objects when the
    usual names (text, body, content...) are absent. `limits` defaults to `ReadLimits()`: the built-in
    limits, or the environment variables of `LIMIT_ENV` where set. `names` gives a display name for each
    path (e.g. the original name of an uploaded temporary file) used in `source` and in problems.
    `encoding` (e.g. ``cp1255``) is used instead of a guess for the files of the upload that have no
    byte-order mark and are not UTF-8 (see `search.decoding`).
    Raises ValueError for misuse: no paths, a bare string instead of a list, `names` of another length,
    a blank or bad `text_column` (`check_text_column`), an `encoding` Python does not know, or a limit's
    environment variable that is not a number.

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
    codec = check_encoding(encoding) if encoding is not None else None
    reader = _Reader(check_text_column(text_column), limits if limits is not None else ReadLimits(), codec)
    for position, path in enumerate(paths):
        display = names[position] if names is not None else str(path)
        reader.guarded(display, reader.read_path, Path(path), display)
    result = reader.result()
    logger.info(
        "read %d documents from %d files with %d problems",
        len(result.documents),
        result.files_read,
        len(result.problems),
    )
    return result


class _Reader:
    """Turns the files the walker finds into documents, within the document limits, with unique ids."""

    def __init__(self, text_column: str | None, limits: ReadLimits, encoding: str | None = None) -> None:
        self.text_column = text_column
        self.limits = limits
        self.encoding = encoding
        self.documents: list[Document] = []
        self.problems: list[Problem] = []
        self.walker = Walker(limits, self._problem)
        self.text_chars = 0
        self._ids = UniqueIds()
        self._problem_counts: Counter[str] = Counter()
        self._unlisted: Counter[str] = Counter()
        self._replaced = 0  # lone surrogates replaced in the file being read

    def result(self) -> ReadResult:
        problems = list(self.problems)
        stopped = self.walker.stop_problem()
        if stopped is not None:
            problems.append(stopped)
        if self._unlisted["(all files)"]:
            problems.append(Problem("(all files)", f"{self._unlisted['(all files)']} more problem(s) not listed "
                                                   f"(only the first {_MAX_PROBLEMS_IN_ALL} are)"))
        return ReadResult(tuple(self.documents), tuple(problems), self.walker.files_read)

    def guarded(self, source: str, action, *args: object) -> None:
        """Run one step of the read; any error it raises becomes a Problem naming `source`, so one bad
        file or archive never costs the others."""
        try:
            action(*args)
        except MemoryError:
            self._problem(Problem(source, "ran out of memory reading this; skipped"))
        except Exception as error:  # the boundary: a bug or an unforeseen library error costs this file only
            logger.warning("reading %s failed", source, exc_info=True)
            self._problem(Problem(source, f"could not be read ({type(error).__name__}: {short_error(error)}); "
                                          "skipped"))

    def read_path(self, path: Path, display: str) -> None:
        for found in self.walker.walk(path, display, self._choose):
            self.guarded(found.entry.source, self._read_leaf, found.data, found.entry)

    def _choose(self, listing: Listing) -> Iterator[Entry]:
        for entry in listing.entries:
            if entry.kind in SUPPORTED_SUFFIXES:
                yield entry
            else:
                self._problem(Problem(entry.source, _unsupported(entry.kind)))

    def _read_leaf(self, data: bytes, entry: Entry) -> None:
        source = entry.source
        if not data:
            self._problem(Problem(source, "empty file"))
            return
        context = FileContext(source, PurePosixPath(entry.name).stem, self.text_column, FileBudget(self.limits),
                              self.encoding)
        kept = 0
        self._replaced = 0
        parsed = PARSERS[entry.kind](data, context)
        try:
            for item in parsed:
                if isinstance(item, Problem):
                    self._problem(item)
                elif self._full(item, source):
                    break
                elif self._add(item, source):
                    kept += 1
        except LimitExceeded as error:
            self._problem(Problem(source, f"{error}{_kept(kept)}", error.line))
        except MemoryError:
            self._problem(Problem(source, f"ran out of memory reading this file; the rest of it was skipped"
                                          f"{_kept(kept)}"))
        except Exception as error:  # the boundary: a parser bug costs the rest of this file only
            logger.warning("reading %s failed", source, exc_info=True)
            self._problem(Problem(source, f"could not be read ({type(error).__name__}: {short_error(error)}); "
                                          f"the rest of the file was skipped{_kept(kept)}"))
        finally:
            parsed.close()
        if self._replaced:
            self._problem(Problem(source, replaced_surrogates(self._replaced), skipped=False))
        unlisted = self._unlisted.pop(source, 0)
        if unlisted:
            self.problems.append(Problem(source, f"{unlisted} more problem(s) in this file not listed"))

    def _full(self, record: Record, source: str) -> bool:
        """Whether keeping `record` would pass `max_documents` or `max_text_chars`; if so the read halts."""
        limits = self.limits
        if len(self.documents) >= limits.max_documents:
            message = (f"stopped at max_documents={limits.max_documents:,}; "
                       f"{raise_hint('max_documents', purpose='to read more')}")
        elif self.text_chars + len(record.text) > limits.max_text_chars:
            message = (f"stopped: this text would take the documents past max_text_chars={limits.max_text_chars:,} "
                       f"characters ({self.text_chars:,} kept so far); "
                       f"{raise_hint('max_text_chars', purpose='to read more')}")
        else:
            return False
        self.walker.halt(Problem(source, message, record.line))
        return True

    def _add(self, record: Record, source: str) -> bool:
        text, replaced = valid_unicode(tidy(record.text))
        if not text:
            self._problem(Problem(source, "empty text; skipped", record.line))
            return False
        if not has_visible_text(text):
            self._problem(Problem(source, "empty text: only invisible characters (zero-width spaces, joiners...); "
                                          "skipped", record.line))
            return False
        wanted, replaced_in_id = valid_unicode(record.doc_id)
        title, replaced_in_title = valid_unicode(" ".join(record.title.split()))
        shown, _ = valid_unicode(source)
        self._replaced += replaced + replaced_in_id + replaced_in_title
        origin = shown if record.line is None else f"{shown}, line {record.line}"
        doc_id, duplicate = self._ids.claim(wanted, origin)
        if duplicate:
            self._problem(Problem(source, duplicate, record.line, skipped=False))
        self.documents.append(Document(doc_id, text, title, shown))
        self.text_chars += len(text)
        return True

    def _problem(self, problem: Problem) -> None:
        # Per file, and in all: an archive of 100,000 junk members must not become 100,000 messages.
        if len(self.problems) >= _MAX_PROBLEMS_IN_ALL:
            self._unlisted["(all files)"] += 1
            return
        if self._problem_counts[problem.source] >= _MAX_PROBLEMS_PER_FILE:
            self._unlisted[problem.source] += 1
            return
        self._problem_counts[problem.source] += 1
        source, _ = valid_unicode(problem.source)
        message, _ = valid_unicode(problem.message)
        self.problems.append(Problem(source, message, problem.line, problem.skipped))


def _unsupported(kind: str) -> str:
    what = f"file type {kind}" if kind else "file without an extension"
    return f"unsupported {what}; supported: {', '.join(SUPPORTED_SUFFIXES)}"


def _kept(kept: int) -> str:
    return f"; the {kept} document(s) read before it are kept" if kept else ""
