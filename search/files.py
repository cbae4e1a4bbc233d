"""Files and zip archives as uploads arrive: safe member names, member listing, bounded decompression.

Shared by the corpus reader (`reading`) and the judgments loader (`judgments`), so both refuse the same
names with the same message:

- a member whose name is absolute (``/etc/x``, ``\\x``), carries a drive letter (``C:x``) or climbs out
  with ``..`` is reported as a `Problem` and never read;
- folders, hidden files (any part starting with ``.``, but ``./`` parts, which are dropped) and macOS
  ``__MACOSX`` metadata are left out silently: they are never documents;
- a name stored without the zip's UTF-8 flag is read as UTF-8 when it is valid UTF-8 (as most tools
  write it), else in the zip's legacy code page, cp437;
- an archive whose end record declares more than `max_zip_entries` entries (or a central directory too
  large for them) is refused before Python parses its directory, which costs a second per 100,000 entries;
- a member is decompressed only within `ReadLimits` (size, compression ratio), checked on the declared
  sizes first and again on the bytes actually produced.
"""

from __future__ import annotations

import io
import re
import struct
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
_UTF8_FLAG = 0x800
_END_RECORD = b"PK\x05\x06"
_END_RECORD_BYTES = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END_RECORD = b"PK\x06\x06"
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

    Folders, hidden files and ``__MACOSX`` metadata are left out without a problem; ``.`` parts of a
    name are dropped (``./a.txt`` is ``a.txt``).
    """
    members: list[ZipMember] = []
    problems: list[Problem] = []
    named = sorted(((member_name(info), info) for info in archive.infolist()), key=lambda pair: pair[0])
    for name, info in named:
        parts = [part for part in _SEPARATORS.split(name) if part and part != "."]
        if info.is_dir() or not parts:
            continue
        if is_unsafe_name(name):
            problems.append(Problem(f"{archive_source}!{name}", "unsafe member name (absolute or '..' path); skipped"))
            continue
        if parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts):
            continue
        path = "/".join(parts)
        members.append(ZipMember(info, path, f"{archive_source}!{path}"))
    return members, problems


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's name: as stored when the UTF-8 flag is set or it is ASCII, else UTF-8 when its bytes are,
    else cp437 (zipfile's reading).

    >>> member_name(zipfile.ZipInfo("caf\u251c\u2310.txt"))  # "café.txt" in UTF-8, read by zipfile as cp437
    'café.txt'
    """
    name = info.filename
    if info.flag_bits & _UTF8_FLAG or name.isascii():
        return name
    try:
        return name.encode("cp437").decode("utf-8")
    except UnicodeError:
        return name


def zip_directory(file: Path | io.BytesIO) -> tuple[int, int] | None:
    """(entries, central directory bytes) that a zip's end record declares (Zip64 included), or None when
    no end record is found (zipfile then says why the archive can't be read)."""
    try:
        stream = file if isinstance(file, io.BytesIO) else open(file, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return None
    try:
        size = stream.seek(0, io.SEEK_END)
        start = max(0, size - _END_RECORD_BYTES - 0xFFFF)
        stream.seek(start)
        tail = stream.read()
        at = tail.rfind(_END_RECORD)
        if at < 0 or len(tail) - at < _END_RECORD_BYTES:
            return None
        entries, directory = struct.unpack_from("<HL", tail, at + 10)
        if (entries == 0xFFFF or directory == 0xFFFFFFFF) and at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR:
            (offset,) = struct.unpack_from("<Q", tail, at - 12)
            stream.seek(offset)
            record = stream.read(56)
            if len(record) == 56 and record[:4] == _ZIP64_END_RECORD:
                entries, directory = struct.unpack_from("<QQ", record, 32)
        return entries, directory
    finally:
        if stream is not file:
            stream.close()


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
