"""CSV and TSV: one document per row, the text, id and title columns found by name in the header."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from ..types import Problem
from .base import ID_KEYS, TEXT_KEYS, TITLE_KEYS, FileContext, Parsed, Record, find_key, no_text_column

_CSV_FIELD_LIMIT = 2**31 - 1
_CHECK_EVERY_ROWS = 500


def parse_csv(data: bytes, context: FileContext) -> Parsed:
    """CSV with RFC 4180 quoting; ';', tab or '|' are also accepted when the header has no comma."""
    return _parse_table(data, context, ",")


def parse_tsv(data: bytes, context: FileContext) -> Parsed:
    """TSV: fields are never quoted, as in MS MARCO and the IANA definition, so a passage may start with a quote."""
    return _parse_table(data, context, "\t")


def _parse_table(data: bytes, context: FileContext, delimiter: str) -> Parsed:
    source, text_column = context.source, context.text_column
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    decoded = context.decode(data)
    yield from decoded.problems
    text = decoded.text
    if text is None:
        return
    if delimiter == ",":
        header_line = text.lstrip("\n").split("\n", 1)[0]
        if "," not in header_line:
            delimiter = next((other for other in (";", "\t", "|") if other in header_line), ",")
    header: list[str] | None = None
    columns = text_index = id_index = title_index = None
    row_number = 0
    for line, last_line, row in _csv_rows(text, delimiter, quoting, context):
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
            text_index = find_key(header, text_column, TEXT_KEYS)
            if text_index is None:
                yield Problem(source, no_text_column(header, text_column, "columns"), line)
                return
            id_index = find_key(header, None, ID_KEYS)
            title_index = find_key(header, None, TITLE_KEYS)
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
        yield Record(doc_id or f"{context.stem}-{row_number}", row[text_index], title, line)
    if header is None:
        yield Problem(source, "no header and no rows")
    elif row_number == 0:
        yield Problem(source, "a header but no rows", 1)


def _csv_rows(text: str, delimiter: str, quoting: int,
              context: FileContext) -> Iterator[tuple[int, int, list[str] | str]]:
    """(first line, last line, fields or an error) per row; after a bad row, parsing resumes on the next line.

    Lines are cut from `text` as the reader asks for them (`_Lines`), so a file of millions of rows is never
    a list of millions of lines, and reading stops as soon as the caller does.
    """
    # One field may hold a whole book; max_file_bytes bounds it. The limit is process-wide, so it is
    # only ever raised (never restored), which is harmless to other users and safe across threads.
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    lines = _Lines(text, 0, 0)
    rows = 0
    while not lines.done:
        reader = csv.reader(lines, delimiter=delimiter, quoting=quoting, strict=True)
        row_end = (lines.position, lines.number)  # where the last good row ended
        try:
            for row in reader:
                rows += 1
                if rows % _CHECK_EVERY_ROWS == 0:
                    context.budget.check(row_end[1] + 1)
                first = row_end[1] + 1
                row_end = (lines.position, lines.number)
                yield first, row_end[1], row
            return
        except csv.Error as error:
            failed = row_end[1] + 1
            context.budget.check(failed)  # a restart rereads lines: bounded by the budget
            yield failed, failed, str(error)
            # Resume on the line after the first line of the bad row.
            after = text.find("\n", row_end[0])
            lines = _Lines(text, len(text) if after == -1 else after + 1, failed)


class _Lines:
    """The lines of `text` from `position` on, each ending in ``\\n``, for csv.reader; `number` counts the
    lines handed out (from the start of the text) and `done` says whether any are left."""

    def __init__(self, text: str, position: int, number: int) -> None:
        self.text = text
        self.position = position
        self.number = number

    @property
    def done(self) -> bool:
        return self.position >= len(self.text)

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.done:
            raise StopIteration
        end = self.text.find("\n", self.position)
        end = len(self.text) if end == -1 else end + 1
        line = self.text[self.position : end]
        self.position = end
        self.number += 1
        return line if line.endswith("\n") else line + "\n"
