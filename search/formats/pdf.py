"""PDF: the text of every page, in order, as one document titled by the PDF's metadata.

Encrypted PDFs with only an owner password (printing or copying restricted, as many exports are) are read;
AES ones need the `cryptography` package, a dependency. One that needs a password to open says so.

pypdf extracts the text. Its limits are tightened to the read's: no stream decompresses past
`max_file_bytes`, at most `max_pdf_pages` pages are read, a page object the page tree lists again is
read once, and the time budget is checked between pages and between a page's drawing operators.
"""

from __future__ import annotations

import contextlib
import io
import logging

import pypdf
from pypdf.errors import DependencyError

from ..files import short_error
from ..limits import FileBudget, LimitExceeded, raise_hint
from ..types import Problem
from .base import FileContext, Parsed, Record, tidy

# pypdf logs a warning for every object it repairs: tens of thousands for a damaged file, which would
# flood the CLI's stderr and cost more time than the repair. What matters reaches the user as a Problem.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_CHECK_EVERY_OPERATORS = 5000
_CHECK_EVERY_READS = 2000
_DECOMPRESSION_SETTINGS = ("zlib_maximum_output_length", "lzw_maximum_output_length",
                           "run_length_maximum_output_length", "array_based_stream_maximum_output_length",
                           "jbig2_maximum_output_length", "brotli_maximum_output_length", "image_maximum_buffer_size")


def parse_pdf(data: bytes, context: FileContext) -> Parsed:
    with _pdf_limits(context.budget):
        found = list(_read_pdf(data, context))
    yield from found


def _pdf_limits(budget: FileBudget) -> contextlib.AbstractContextManager[object]:
    """pypdf's own limits (pypdf >= 7) narrowed to this read's; a no-op on older pypdf."""
    apply = getattr(pypdf, "apply_configuration", None)
    current = getattr(pypdf, "get_configuration", None)
    if apply is None or current is None:
        return contextlib.nullcontext()
    configuration = current()
    limit = budget.limits.max_file_bytes
    overrides = {name: min(getattr(configuration, name), limit) for name in _DECOMPRESSION_SETTINGS
                 if hasattr(configuration, name)}
    return apply(**overrides)


def _read_pdf(data: bytes, context: FileContext) -> Parsed:
    source, budget = context.source, context.budget
    try:
        reader = pypdf.PdfReader(_BudgetedBytes(data, budget))
        if reader.is_encrypted and not reader.decrypt(""):
            yield Problem(source, "encrypted PDF that needs a password; save an unprotected copy and read that")
            return
        count = len(reader.pages)
    except DependencyError as error:
        yield Problem(source, _needs_cryptography(error))
        return
    except Exception as error:  # pypdf raises many kinds of errors on damaged files
        yield Problem(source, f"cannot read this PDF ({type(error).__name__}: {short_error(error)}); skipped")
        return
    limit = budget.limits.max_pdf_pages
    texts: list[str] = []
    blank: list[int] = []
    seen: dict[tuple[int, int], int] = {}
    repeats: list[int] = []
    operators = 0

    def check(*_: object) -> None:
        nonlocal operators
        operators += 1
        if operators % _CHECK_EVERY_OPERATORS == 0:
            budget.check(number)

    stopped: LimitExceeded | None = None
    for number in range(1, min(count, limit) + 1):
        try:
            budget.check(number)
            page = reader.pages[number - 1]
            reference = page.indirect_reference
            key = (reference.idnum, reference.generation) if reference is not None else None
            if key is not None and key in seen:
                repeats.append(number)  # the page tree lists this page object again: one copy is enough
                continue
            if key is not None:
                seen[key] = number
            page_text = tidy(page.extract_text(visitor_operand_before=check) or "")
        except LimitExceeded as error:
            stopped = error
            break
        except DependencyError as error:  # every page is encrypted alike: one message for the file
            yield Problem(source, _needs_cryptography(error))
            return
        except Exception as error:  # as above, per page so the other pages are kept
            yield Problem(source, f"cannot extract text from page {number} ({type(error).__name__}: "
                                  f"{short_error(error)})", number)
            continue
        if page_text:
            texts.append(page_text)
        else:
            blank.append(number)
    if stopped is not None and not texts:
        raise stopped
    if not texts:
        why = ("an encrypted PDF whose text could not be decrypted; save an unprotected copy and read that"
               if reader.is_encrypted else "a scanned PDF needs OCR first")
        yield Problem(source, f"no text in any of its {count} page(s); {why}")
        return
    for number in blank:
        yield Problem(source, f"page {number} has no text (a scanned image?)", number, skipped=False)
    if repeats:
        yield Problem(source, f"{len(repeats)} page(s) repeat an earlier page object (first: page {repeats[0]}) "
                              "and were read once", repeats[0], skipped=False)
    if stopped is not None:
        yield Problem(source, f"{stopped}; the text of the pages before it is kept", stopped.line)
    elif count > limit:
        yield Problem(source, f"has {count:,} pages; read the first {limit:,} (max_pdf_pages={limit:,}); "
                              f"{raise_hint('max_pdf_pages', count)}", limit + 1)
    yield Record(context.stem, "\n\n".join(texts), "" if stopped is not None else _pdf_title(reader))


class _BudgetedBytes(io.BytesIO):
    """The PDF's bytes as pypdf reads them, checking the time budget every so many reads: pypdf's
    recovery from a damaged file is a loop of its own, which no page boundary interrupts."""

    def __init__(self, data: bytes, budget: FileBudget) -> None:
        super().__init__(data)
        self._budget = budget
        self._reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self._reads += 1
        if self._reads % _CHECK_EVERY_READS == 0:
            self._budget.check()
        return super().read(size)


def _needs_cryptography(error: Exception) -> str:
    return (f"encrypted with AES, which pypdf decrypts only with the cryptography package ({short_error(error)}); "
            "skipped; pip install cryptography")


def _pdf_title(reader: object) -> str:
    try:
        title = reader.metadata.title  # type: ignore[attr-defined]
    except Exception:  # broken metadata must not lose the text
        return ""
    return title if isinstance(title, str) else ""
