"""Walking an upload: files, folders and zip archives (nested), within one read's `ReadLimits`.

One walker serves the corpus reader (`search.reading`) and the judgments loader (`search.judgments`),
so both find the same files and refuse the same ones:

- a path given directly is one file (or, for a ``.zip``, an archive); a folder lists every file below
  it, a folder's own files (sorted) before those of its sub-folders, hidden files and folders (a name
  starting with ``.``) left out; an archive lists its members (`search.files`: unsafe names refused,
  metadata left out, names decoded), at most `max_zip_entries` of them, and at most that many for all
  archives of the walk together;
- the caller's `Chooser` says which listed files to read, in which order; a chosen ``.zip`` is opened
  and listed in turn, up to `max_zip_depth` deep;
- every file read counts toward `max_files` and `max_total_bytes` (an archive member by its
  decompressed size, within `max_file_bytes` and `max_compression_ratio`); past either the walk stops
  (`halted`), and the entries it meets after that are counted in `not_read`.

Each file read comes out as a `Found` (its `Entry` and bytes), with a display `source` such as
``folder/sub/a.txt`` or ``a.zip!in/b.zip!c.txt``. An error while listing or reading one entry becomes a
Problem naming it, and the walk goes on with the next.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal, NamedTuple

from .files import (
    format_size,
    last_component,
    open_zip,
    read_zip_member,
    short_error,
    suffix,
    too_big,
    zip_directory,
    zip_members,
)
from .limits import ReadLimits, raise_hint
from .types import Problem

logger = logging.getLogger(__name__)

ARCHIVE = ".zip"
# zipfile parses a directory entry of at least 46 bytes a few microseconds at a time; a directory much
# larger than its declared entries need is a lie about their number, and refused like too many entries.
_DIRECTORY_BYTES_PER_ENTRY = 512


class _Member(NamedTuple):
    archive: zipfile.ZipFile
    info: zipfile.ZipInfo


class Entry(NamedTuple):
    """A file listed in an upload, not read yet: its display `source`, its `path` inside its folder or
    archive (``/``-separated; for a path given directly, its display name), its `kind` (lower-case
    suffix, e.g. ``.csv``) and where its bytes are."""

    source: str
    path: str
    kind: str
    location: Path | _Member

    @property
    def name(self) -> str:
        """The last part of `path`: ``b.csv`` for ``a/b.csv``."""
        return self.path.rsplit("/", 1)[-1]


class Listing(NamedTuple):
    """What a path holds: `kind` "file" for a path given directly (one entry), else a folder's or an
    archive's files, in reading order."""

    source: str
    kind: Literal["file", "folder", "archive"]
    entries: tuple[Entry, ...]


class Found(NamedTuple):
    """A file read: its entry and its bytes."""

    entry: Entry
    data: bytes


Chooser = Callable[[Listing], Iterable[Entry]]
"""Given a listing, the entries to read (archives included), in order; may report the others."""


class Walker:
    """Walks the paths of one read, keeping its counts and limits across them; `report` receives every
    Problem met (refused names, files too big, unreadable archives...)."""

    def __init__(self, limits: ReadLimits, report: Callable[[Problem], None]) -> None:
        self.limits = limits
        self._report = report
        self.files_read = 0
        self.total_bytes = 0
        self.entries_listed = 0
        self.halted: Problem | None = None
        self.not_read = 0

    def halt(self, problem: Problem) -> None:
        """Stop the walk (the first reason wins): entries met from now on are counted, not read."""
        if self.halted is None:
            self.halted = problem

    def stop_problem(self) -> Problem | None:
        """Why and where the walk stopped, and how many files it did not read; None if it did not stop."""
        if self.halted is None:
            return None
        return Problem(self.halted.source, f"{self.halted.message}; {self.not_read} file(s) were not read",
                       self.halted.line)

    def walk(self, path: Path, display: str, choose: Chooser) -> Iterator[Found]:
        """The files of `path` (shown as `display`) that `choose` picks, read, in order."""
        try:
            if path.is_dir():
                listing = self._folder(path, display)
            elif path.is_file():
                name = last_component(display) or path.name
                entry = Entry(display, name, suffix(name) or suffix(path.name), path)
                listing = Listing(display, "file", (entry,))
            else:
                self._report(Problem(display, "not a regular file or folder; skipped" if path.exists()
                                     else "no such file or folder"))
                return
        except OSError as error:
            self._report(Problem(display, f"cannot read: {error.strerror or error}"))
            return
        yield from self._chosen(listing, choose, depth=0)

    def _chosen(self, listing: Listing, choose: Chooser, depth: int) -> Iterator[Found]:
        for entry in choose(listing):
            if self.halted is not None:
                self.not_read += 1
                continue
            try:
                if entry.kind == ARCHIVE:
                    yield from self._archive(entry, choose, depth + 1)
                elif (data := self._read(entry)) is not None:
                    self.files_read += 1
                    self.total_bytes += len(data)
                    yield Found(entry, data)
            except Exception as error:  # the boundary: one bad entry costs only itself
                logger.warning("reading %s failed", entry.source, exc_info=True)
                self._report(Problem(entry.source, f"could not be read ({type(error).__name__}: "
                                                   f"{short_error(error)}); skipped"))

    def _folder(self, folder: Path, display: str) -> Listing:
        errors: list[OSError] = []
        entries = []
        for root, dirs, files in os.walk(folder, onerror=errors.append):
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
            relative = Path(root).relative_to(folder).as_posix()
            for name in sorted(name for name in files if not name.startswith(".")):
                inner = name if relative == "." else f"{relative}/{name}"
                entries.append(Entry(f"{display.rstrip('/')}/{inner}", inner, suffix(name), Path(root, name)))
        for error in errors:
            self._report(Problem(display, f"cannot list folder {error.filename}: {error.strerror}"))
        if not entries and not errors:
            self._report(Problem(display, "no files in this folder (hidden files are skipped)"))
        return Listing(display, "folder", tuple(entries))

    def _archive(self, entry: Entry, choose: Chooser, depth: int) -> Iterator[Found]:
        limits = self.limits
        if depth > limits.max_zip_depth:
            deepest = limits.max_zip_depth
            self._report(Problem(entry.source, f"archive nested {depth} deep is past max_zip_depth={deepest}; "
                                               f"skipped; {raise_hint('max_zip_depth', depth)}"))
            return
        if isinstance(entry.location, Path):
            file: Path | io.BytesIO = entry.location
        else:
            data = read_zip_member(entry.location.archive, entry.location.info, entry.source, limits)
            if isinstance(data, Problem):
                self._report(data)
                return
            file = io.BytesIO(data)
        if (refused := self._too_many_entries(file, entry.source)) is not None:
            self._report(refused)
            return
        archive = open_zip(file, entry.source)
        if isinstance(archive, Problem):
            self._report(archive)
            return
        with archive:
            listed = len(archive.infolist())
            if (refused := self._too_many(listed, entry.source)) is not None:  # a directory that lied
                self._report(refused)
                return
            self.entries_listed += listed
            members, unsafe = zip_members(archive, entry.source)
            for problem in unsafe:
                self._report(problem)
            entries = tuple(Entry(member.source, member.path, suffix(member.path), _Member(archive, member.info))
                            for member in members)
            yield from self._chosen(Listing(entry.source, "archive", entries), choose, depth)

    def _too_many_entries(self, file: Path | io.BytesIO, source: str) -> Problem | None:
        """A Problem when the archive's end record declares too many entries, or a directory too big for them."""
        declared = zip_directory(file)
        if declared is None:
            return None  # not a zip as far as its end says: zipfile will tell why
        entries, directory = declared
        if refused := self._too_many(entries, source):
            return refused
        if directory > max(entries, 1) * _DIRECTORY_BYTES_PER_ENTRY:
            return Problem(source, f"its directory of {format_size(directory)} is far larger than its {entries:,} "
                                   "declared entries need (a damaged or hostile archive); skipped")
        return None

    def _too_many(self, entries: int, source: str) -> Problem | None:
        limit = self.limits.max_zip_entries
        if entries > limit:
            return Problem(source, f"archive lists {entries:,} entries, over max_zip_entries={limit:,}; skipped; "
                                   f"{raise_hint('max_zip_entries', entries)}")
        if self.entries_listed + entries > limit:
            return Problem(source, f"its {entries:,} entries would take the archives of this upload past "
                                   f"max_zip_entries={limit:,} ({self.entries_listed:,} listed so far); skipped; "
                                   f"{raise_hint('max_zip_entries', self.entries_listed + entries)}")
        return None

    def _read(self, entry: Entry) -> bytes | None:
        """The bytes of a file within the limits, or None (with the reason reported, or the walk halted)."""
        limits = self.limits
        if self.files_read >= limits.max_files:
            self.halt(Problem(entry.source, f"stopped at max_files={limits.max_files}; "
                                            f"{raise_hint('max_files', purpose='to read more')}"))
            self.not_read += 1
            return None
        if isinstance(entry.location, _Member):
            data = read_zip_member(entry.location.archive, entry.location.info, entry.source, limits,
                                   fits=lambda size: self._fits_total(size, entry.source))
            if isinstance(data, Problem):
                self._report(data)
                return None
            return data
        try:
            size = entry.location.stat().st_size
            if size > limits.max_file_bytes:
                self._report(Problem(entry.source, too_big(size, "is ", limits.max_file_bytes)))
                return None
            if not self._fits_total(size, entry.source):
                return None
            return entry.location.read_bytes()
        except OSError as error:
            self._report(Problem(entry.source, f"cannot read: {error.strerror or error}"))
            return None

    def _fits_total(self, size: int, source: str) -> bool:
        limit = self.limits.max_total_bytes
        if self.total_bytes + size <= limit:
            return True
        self.halt(Problem(source, f"stopped: this file would take the total past max_total_bytes={limit:,} "
                                  f"({format_size(self.total_bytes)} read so far); "
                                  f"{raise_hint('max_total_bytes', purpose='to read more')}"))
        self.not_read += 1
        return False
