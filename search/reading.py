"""Reading a corpus: files, folders and zip archives of text, Markdown, CSV/TSV, JSON(L), HTML and PDF.

Bad content never raises: each problem becomes a `Problem` naming the file (and line, row or page)
and everything readable is kept. Every file is read inside a boundary that turns any error, even a
bug in a parser, into a Problem for that file alone, and within a per-file budget (`ReadLimits`:
time, PDF pages, JSON nesting, decompressed bytes). Only misuse of the API raises `ValueError`.

This module walks paths and archives, enforces the limits and keeps ids unique; safe zip members live in
`search.files`, decoding in `search.decoding`, one parser per format in `search.formats`.

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
- `ReadResult.files_read` counts the files whose content was read, archive members included and
  the archives themselves not.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .decoding import check_encoding, has_visible_text
from .files import (
    ZipMember,
    format_size,
    last_component,
    open_zip,
    read_zip_member,
    short_error,
    suffix,
    too_big,
    zip_members,
)
from .formats import PARSERS, FileContext, Record
from .formats.base import tidy
from .ids import UniqueIds
from .limits import LIMIT_ENV, FileBudget, LimitExceeded, ReadLimits, raise_hint
from .types import Document, Problem, ReadResult

__all__ = ["LIMIT_ENV", "SUPPORTED_SUFFIXES", "ReadLimits", "read_paths"]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: tuple[str, ...] = (*PARSERS, ".zip")
_MAX_PROBLEMS_PER_FILE = 100
_MAX_PROBLEMS_IN_ALL = 1000


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
    an `encoding` Python does not know, or a limit's environment variable that is not a number.

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
    reader = _Reader(text_column.strip() if text_column else None, limits if limits is not None else ReadLimits(),
                     codec)
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
    """Walks paths and archives, enforces the limits and keeps document ids unique."""

    def __init__(self, text_column: str | None, limits: ReadLimits, encoding: str | None = None) -> None:
        self.text_column = text_column
        self.limits = limits
        self.encoding = encoding
        self.documents: list[Document] = []
        self.problems: list[Problem] = []
        self.files_read = 0
        self.total_bytes = 0
        self._ids = UniqueIds()
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

    def guarded(self, source: str, action, *args: object) -> None:
        """Run one step of the walk; any error it raises becomes a Problem naming `source`, so one bad
        file or archive never costs the others."""
        try:
            action(*args)
        except Exception as error:  # the boundary: a bug or an unforeseen library error costs this file only
            logger.warning("reading %s failed", source, exc_info=True)
            self._problem(Problem(source, f"could not be read ({type(error).__name__}: {short_error(error)}); "
                                          "skipped"))

    def read_path(self, path: Path, display: str) -> None:
        if path.is_dir():
            self._read_folder(path, display)
        elif path.is_file():
            self._read_file(path, display, last_component(display) or path.name)
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
                source = f"{display.rstrip('/')}/{inner}"
                self.guarded(source, self._read_file, Path(root, name), source, name)
        for error in errors:
            self._problem(Problem(display, f"cannot list folder {error.filename}: {error.strerror}"))
        if not found and not errors:
            self._problem(Problem(display, "no files in this folder (hidden files are skipped)"))

    def _read_file(self, path: Path, display: str, name: str) -> None:
        kind = suffix(name) or suffix(path.name)
        if kind not in SUPPORTED_SUFFIXES:
            self._problem(Problem(display, _unsupported(kind)))
            return
        if kind == ".zip":
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
                self._problem(Problem(display, too_big(size, "is ", self.limits.max_file_bytes)))
                return
            if not self._fits_total(size, display):
                return
            data = path.read_bytes()
        except OSError as error:
            self._problem(Problem(display, f"cannot read: {error.strerror or error}"))
            return
        self._read_leaf(data, kind, display, PurePosixPath(name).stem)

    def _read_zip(self, file: Path | io.BytesIO, source: str, depth: int) -> None:
        if depth > self.limits.max_zip_depth:
            self._problem(Problem(source, _too_deep(depth, self.limits.max_zip_depth)))
            return
        archive = open_zip(file, source)
        if isinstance(archive, Problem):
            self._problem(archive)
            return
        with archive:
            members, unsafe = zip_members(archive, source)
            for problem in unsafe:
                self._problem(problem)
            for member in members:
                self.guarded(member.source, self._read_member, archive, member, depth)

    def _read_member(self, archive: zipfile.ZipFile, member: ZipMember, depth: int) -> None:
        source = member.source
        name = member.path.rsplit("/", 1)[-1]
        kind = suffix(name)
        if kind not in SUPPORTED_SUFFIXES:
            self._problem(Problem(source, _unsupported(kind)))
            return
        nested = kind == ".zip"
        if nested and self._halt is not None:
            self._not_read += 1
            return
        if nested and depth + 1 > self.limits.max_zip_depth:
            self._problem(Problem(source, _too_deep(depth + 1, self.limits.max_zip_depth)))
            return
        if not nested and not self._may_read_another(source):
            return
        fits = None if nested else (lambda size: self._fits_total(size, source))
        data = read_zip_member(archive, member.info, source, self.limits, fits=fits)
        if isinstance(data, Problem):
            self._problem(data)
        elif data is None:
            return
        elif nested:
            self._read_zip(io.BytesIO(data), source, depth + 1)
        else:
            self._read_leaf(data, kind, source, PurePosixPath(name).stem)

    def _may_read_another(self, source: str) -> bool:
        if self._halt is not None:
            self._not_read += 1
            return False
        if self.files_read >= self.limits.max_files:
            limit = self.limits.max_files
            hint = raise_hint("max_files", purpose="to read more")
            self._halt = Problem(source, f"stopped at max_files={limit}; {hint}")
            self._not_read += 1
            return False
        return True

    def _fits_total(self, size: int, source: str) -> bool:
        limit = self.limits.max_total_bytes
        if self.total_bytes + size <= limit:
            return True
        message = (
            f"stopped: this file would take the total past max_total_bytes={limit:,} "
            f"({format_size(self.total_bytes)} read so far); "
            f"{raise_hint('max_total_bytes', purpose='to read more')}"
        )
        self._halt = Problem(source, message)
        self._not_read += 1
        return False

    def _read_leaf(self, data: bytes, kind: str, source: str, stem: str) -> None:
        self.files_read += 1
        self.total_bytes += len(data)
        if not data:
            self._problem(Problem(source, "empty file"))
            return
        context = FileContext(source, stem, self.text_column, FileBudget(self.limits), self.encoding)
        kept = 0
        try:
            for item in PARSERS[kind](data, context):
                if isinstance(item, Problem):
                    self._problem(item)
                elif self._add(item, source):
                    kept += 1
        except LimitExceeded as error:
            self._problem(Problem(source, f"{error}{_kept(kept)}", error.line))
        except Exception as error:  # the boundary: a parser bug costs the rest of this file only
            logger.warning("reading %s failed", source, exc_info=True)
            self._problem(Problem(source, f"could not be read ({type(error).__name__}: {short_error(error)}); "
                                          f"the rest of the file was skipped{_kept(kept)}"))
        unlisted = self._unlisted.pop(source, 0)
        if unlisted:
            self.problems.append(Problem(source, f"{unlisted} more problem(s) in this file not listed"))

    def _add(self, record: Record, source: str) -> bool:
        text = tidy(record.text)
        if not text:
            self._problem(Problem(source, "empty text; skipped", record.line))
            return False
        if not has_visible_text(text):
            self._problem(Problem(source, "empty text: only invisible characters (zero-width spaces, joiners...); "
                                          "skipped", record.line))
            return False
        origin = source if record.line is None else f"{source}, line {record.line}"
        doc_id, duplicate = self._ids.claim(record.doc_id, origin)
        if duplicate:
            self._problem(Problem(source, duplicate, record.line, skipped=False))
        self.documents.append(Document(doc_id, text, " ".join(record.title.split()), source))
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
        self.problems.append(problem)


def _unsupported(kind: str) -> str:
    what = f"file type {kind}" if kind else "file without an extension"
    return f"unsupported {what}; supported: {', '.join(SUPPORTED_SUFFIXES)}"


def _too_deep(depth: int, limit: int) -> str:
    return f"archive nested {depth} deep is past max_zip_depth={limit}; skipped; {raise_hint('max_zip_depth', depth)}"


def _kept(kept: int) -> str:
    return f"; the {kept} document(s) read before it are kept" if kept else ""
