"""Files and zip archives as uploads arrive: safe member names, member listing, bounded decompression.

Shared by the corpus reader (`reading`) and the judgments loader (`judgments`), so both refuse the same
names with the same message:

- a member whose name is absolute (``/etc/x``, ``\\x``), carries a drive letter (``C:x``) or climbs out
  with ``..`` is reported as a `Problem` and never read;
- folders, hidden files (any part starting with ``.``) and macOS ``__MACOSX`` metadata are left out
  silently: they are never documents;
- a member is decompressed only within `ReadLimits` (size, compression ratio), checked on the declared
  sizes first and again on the bytes actually produced.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from .limits import MB, ReadLimits, raise_hint
from .types import Problem

# Below this size a member cannot hurt whatever its compression ratio, and small repetitive
# files (a CSV of near-identical rows) legitimately compress past 100:1.
_RATIO_FLOOR_BYTES = 1 * MB
_CHUNK_BYTES = 1 << 16
_SEPARATORS = re.compile(r"[\\/]+")
_DRIVE = re.compile(r"[A-Za-z]:")
# Opening an archive reads its central directory; these are what a damaged one raises.
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
               RuntimeError, KeyError, IndexError, OverflowError, UnicodeDecodeError)


class ZipMember(NamedTuple):
    """A member worth reading: its entry, its path with ``/`` separators, and its display source."""

    info: zipfile.ZipInfo
    path: str
    source: str


def suffix(name: str) -> str:
    """The lower-case extension of the last part of `name` (``/`` or ``\\`` separated), or "".

    >>> suffix("corpus\\\\Data.JSONL")
    '.jsonl'
    """
    return PurePosixPath(name.replace("\\", "/")).suffix.lower()


def last_component(display: str) -> str:
    """The last ``/`` or ``\\`` separated part of a display name ("" for a bare separator)."""
    return _SEPARATORS.split(display.rstrip("\\/"))[-1]


def is_unsafe_name(name: str) -> bool:
    """Whether a member name could escape the archive: absolute (``/x``, ``\\x``), a drive letter (``C:x``)
    or a ``..`` part."""
    parts = [part for part in _SEPARATORS.split(name) if part]
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts


def open_zip(file: Path | io.BytesIO, source: str) -> zipfile.ZipFile | Problem:
    """The archive, or a Problem naming `source` when it is not a zip this Python can read."""
    try:
        return zipfile.ZipFile(file)
    except _ZIP_ERRORS as error:
        return Problem(source, f"not a readable zip archive ({short_error(error)}); skipped")


def zip_members(archive: zipfile.ZipFile, archive_source: str) -> tuple[list[ZipMember], list[Problem]]:
    """The members worth reading, sorted by name, and a Problem for each unsafe name.

    Folders, hidden files and ``__MACOSX`` metadata are left out without a problem.
    """
    members: list[ZipMember] = []
    problems: list[Problem] = []
    for info in sorted(archive.infolist(), key=lambda member: member.filename):
        name = info.filename
        parts = [part for part in _SEPARATORS.split(name) if part]
        if info.is_dir() or not parts:
            continue
        source = f"{archive_source}!{name}"
        if is_unsafe_name(name):
            problems.append(Problem(source, "unsafe member name (absolute or '..' path); skipped"))
            continue
        if parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts):
            continue
        members.append(ZipMember(info, "/".join(parts), source))
    return members, problems


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
        return Problem(source, too_big(info.file_size, "declares ", limits.max_file_bytes))
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
                    return Problem(source, too_big(size, "decompresses to more than ", limits.max_file_bytes))
                if size > _RATIO_FLOOR_BYTES and size / packed > limits.max_compression_ratio:
                    return Problem(source, _bomb(size / packed, limits.max_compression_ratio))
                if fits is not None and size > info.file_size and not fits(size):
                    return None
                chunks.append(chunk)
    except (*_ZIP_ERRORS, zlib.error) as error:
        # lzma and bz2 errors are OSError/ValueError subclasses; unknown methods raise NotImplementedError.
        return Problem(source, f"cannot decompress this member ({short_error(error)}); skipped")
    return b"".join(chunks)


def too_big(size: int, verb: str, limit: int) -> str:
    """The message for a file over `max_file_bytes`: ``verb`` is "is ", "declares ", "decompresses to more than "."""
    needed = size if verb != "decompresses to more than " else None
    return (f"file {verb}{format_size(size)}, over max_file_bytes={limit:,}; skipped; "
            f"{raise_hint('max_file_bytes', needed)}")


def format_size(size: int) -> str:
    """``12.3 MB`` from a tenth of a MB up, else ``1,234 bytes``."""
    return f"{size / MB:.1f} MB" if size >= MB // 10 else f"{size:,} bytes"


def _bomb(ratio: float, limit: float) -> str:
    return (
        f"compression ratio {ratio:,.0f}:1 is over max_compression_ratio={limit:g} (a likely zip bomb); "
        f"not decompressed; if the archive is trusted, {raise_hint('max_compression_ratio', ratio)}"
    )


def short_error(error: BaseException, width: int = 200) -> str:
    """An exception as a bounded one-line message (its type when it has no text)."""
    text = str(error) or type(error).__name__
    return text if len(text) <= width else text[: width - 1] + "…"
