"""What one read may cost: `ReadLimits`, the environment variables that raise them, and the per-file budget.

Every limit can be raised without code: `ReadLimits()` starts from its setting (`search.config`), whose
variable is named in `LIMIT_ENV` (e.g. ``SEARCH_MAX_FILE_MB=200``), so the CLI and the app obey them alike,
and every message about a limit that was hit names the variable to set. Arguments given to
`ReadLimits(...)` win over the environment.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from . import config

MB = 1_000_000


class _Setting(NamedTuple):
    option: str  # the setting in search.config's table
    scale: int  # the setting's unit in the field's unit: MB -> bytes
    unit: str  # shown in messages: "MB", "seconds", ""


_SETTINGS: dict[str, _Setting] = {
    "max_file_bytes": _Setting("max_file_mb", MB, "MB"),
    "max_total_bytes": _Setting("max_total_mb", MB, "MB"),
    "max_files": _Setting("max_files", 1, ""),
    "max_zip_depth": _Setting("max_zip_depth", 1, ""),
    "max_compression_ratio": _Setting("max_compression_ratio", 1, ""),
    "max_seconds_per_file": _Setting("max_seconds_per_file", 1, "seconds"),
    "max_pdf_pages": _Setting("max_pdf_pages", 1, ""),
    "max_nesting": _Setting("max_nesting", 1, ""),
    "max_documents": _Setting("max_documents", 1, ""),
    "max_text_chars": _Setting("max_text_chars", 1, ""),
    "max_zip_entries": _Setting("max_zip_entries", 1, ""),
}
LIMIT_ENV: dict[str, str] = {name: config.OPTION[setting.option].env for name, setting in _SETTINGS.items()}
"""ReadLimits field -> the environment variable that sets it (sizes in MB)."""


def _configured(name: str) -> float:
    setting = _SETTINGS[name]
    scaled = getattr(config.current(), setting.option) * setting.scale
    return scaled if name in ("max_compression_ratio", "max_seconds_per_file") else int(scaled)


def _env_default(name: str):
    return field(default_factory=lambda: _configured(name))


@dataclass(frozen=True)
class ReadLimits:
    """Limits that keep a hostile or accidental upload from exhausting time or memory.

    Each field defaults to its environment variable (`LIMIT_ENV`), else to the value below.

    - `max_file_bytes`: largest single file, measured uncompressed for archive members (50 MB;
      ``SEARCH_MAX_FILE_MB``). Archives on disk are streamed, so only their members are measured.
    - `max_total_bytes`: uncompressed bytes of all files together (200 MB; ``SEARCH_MAX_TOTAL_MB``);
      reading stops there.
    - `max_files`: files read in one call, archive members included (5000; ``SEARCH_MAX_FILES``).
    - `max_zip_depth`: how many archives deep a member may sit: 1 reads ``a.zip!x.txt``, the default 2
      also ``a.zip!b.zip!x.txt``; 0 refuses archives (``SEARCH_MAX_ZIP_DEPTH``).
    - `max_compression_ratio`: uncompressed size / compressed size above which a member of at
      least 1 MB is refused as a likely zip bomb (100; ``SEARCH_MAX_COMPRESSION_RATIO``).
    - `max_seconds_per_file`: time to parse one file; past it the file's remaining content is skipped
      and the documents found so far are kept (60; ``SEARCH_MAX_SECONDS_PER_FILE``).
    - `max_pdf_pages`: pages read from one PDF; the rest are skipped with a problem (2000;
      ``SEARCH_MAX_PDF_PAGES``).
    - `max_nesting`: how deeply JSON arrays and objects may nest (100; ``SEARCH_MAX_NESTING``).
    - `max_documents`: documents kept from one call; reading stops there, mid-file, with the documents so
      far kept (200,000; ``SEARCH_MAX_DOCUMENTS``). A CSV of one character per row makes 25 million from
      50 MB; ten times the default passage limit is room enough for any corpus this app indexes.
    - `max_text_chars`: characters of document text kept from one call, the bound on its memory; reading
      stops there (200 million; ``SEARCH_MAX_TEXT_CHARS``).
    - `max_zip_entries`: entries an archive may list, and all archives of one call together; an archive
      over it is refused before its directory is parsed (20,000; ``SEARCH_MAX_ZIP_ENTRIES``).
    """

    max_file_bytes: int = _env_default("max_file_bytes")
    max_total_bytes: int = _env_default("max_total_bytes")
    max_files: int = _env_default("max_files")
    max_zip_depth: int = _env_default("max_zip_depth")
    max_compression_ratio: float = _env_default("max_compression_ratio")
    max_seconds_per_file: float = _env_default("max_seconds_per_file")
    max_pdf_pages: int = _env_default("max_pdf_pages")
    max_nesting: int = _env_default("max_nesting")
    max_documents: int = _env_default("max_documents")
    max_text_chars: int = _env_default("max_text_chars")
    max_zip_entries: int = _env_default("max_zip_entries")

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_total_bytes", "max_files", "max_pdf_pages", "max_nesting",
                     "max_documents", "max_text_chars", "max_zip_entries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed; use a whole number >= 1")
        if isinstance(self.max_zip_depth, bool) or not isinstance(self.max_zip_depth, int) or self.max_zip_depth < 0:
            raise ValueError(f"max_zip_depth={self.max_zip_depth!r} is not allowed; use a whole number >= 0")
        if not self.max_compression_ratio >= 1:
            raise ValueError(f"max_compression_ratio={self.max_compression_ratio!r} is not allowed; use a number >= 1")
        if not self.max_seconds_per_file > 0:
            raise ValueError(f"max_seconds_per_file={self.max_seconds_per_file!r} is not allowed; use a number > 0")


def raise_hint(name: str, needed: float | None = None, purpose: str = "to read it") -> str:
    """How a user raises the limit `name`: the environment variable to set, with the value `needed` (in
    the field's unit; shown in the variable's, rounded up) when one is known.

    >>> raise_hint("max_zip_depth", 3)
    'set SEARCH_MAX_ZIP_DEPTH=3 (environment variable) to read it'
    >>> raise_hint("max_file_bytes", 2_345_678)
    'set SEARCH_MAX_FILE_MB=2.4 or more (environment variable) to read it'
    >>> raise_hint("max_files", purpose="to read more")
    'set SEARCH_MAX_FILES to a larger number (environment variable) to read more'
    """
    setting = _SETTINGS[name]
    env = LIMIT_ENV[name]
    if needed is not None:
        value = math.ceil(needed / setting.scale * 10) / 10
        more = "" if float(value).is_integer() and setting.scale == 1 else " or more"
        return f"set {env}={value:g}{more} (environment variable) {purpose}"
    unit = f" of {setting.unit}" if setting.unit == "MB" else ""
    return f"set {env} to a larger number{unit} (environment variable) {purpose}"


class LimitExceeded(BaseException):
    """A per-file limit was hit while parsing: the rest of the file is skipped. `str()` is the user message.

    A BaseException, like KeyboardInterrupt, so that a library's ``except Exception`` (pypdf recovers from
    damaged files that way) cannot swallow it: only the reader, which expects it, catches it.
    """

    def __init__(self, limit: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.line = line


class FileBudget:
    """The time one file may take, and its other per-file limits; parsers call `check()` as they go."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds_per_file

    def check(self, line: int | None = None) -> None:
        """Raise LimitExceeded once the file has used up `max_seconds_per_file`."""
        if time.monotonic() > self.deadline:
            seconds = self.limits.max_seconds_per_file
            raise LimitExceeded("max_seconds_per_file",
                                f"reading took longer than max_seconds_per_file={seconds:g}; the rest of the file "
                                f"was skipped; {raise_hint('max_seconds_per_file', purpose='to allow more')}", line)

    def check_nesting(self, depth: int, line: int | None = None) -> None:
        """Raise LimitExceeded when `depth` is past `max_nesting`."""
        limit = self.limits.max_nesting
        if depth > limit:
            raise LimitExceeded("max_nesting", f"JSON nested more than {limit} deep (max_nesting={limit}); "
                                               f"{raise_hint('max_nesting', purpose='to allow deeper nesting')}", line)
