"""One parser per file format: bytes of one file in, `Record`s and `Problem`s out.

Each parser gets the file's bytes and a `FileContext` (display source, stem, text column, budget, the
upload's encoding), decodes with `FileContext.decode` (`search.decoding`), never raises on bad content (a
bad row, line or page is a Problem and the rest is kept) and calls `context.budget.check()` as it goes, so
no file can run past its time budget.

| module | formats |
| --- | --- |
| `text` | ``.txt``, ``.md``/``.markdown`` (title: the first ``# heading``) |
| `table` | ``.csv`` (RFC 4180; ``;``, tab or ``|`` recognised), ``.tsv`` (never quoted) |
| `json_records` | ``.jsonl`` (BEIR), ``.json`` (a list, ``{"documents": [...]}`` or SQuAD via `squad`) |
| `html` | ``.html``/``.htm``: visible text and ``<title>``, linear-time; charset by the WHATWG rules (`html_charset`) |
| `pdf` | ``.pdf``: text page by page (pypdf) |
"""

from __future__ import annotations

from .base import FileContext, Parsed, Parser, Record
from .html import parse_html
from .json_records import parse_json, parse_jsonl
from .pdf import parse_pdf
from .table import parse_csv, parse_tsv
from .text import parse_markdown, parse_plain

__all__ = ["PARSERS", "FileContext", "Parsed", "Parser", "Record"]

PARSERS: dict[str, Parser] = {
    ".txt": parse_plain,
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".csv": parse_csv,
    ".tsv": parse_tsv,
    ".jsonl": parse_jsonl,
    ".json": parse_json,
    ".html": parse_html,
    ".htm": parse_html,
    ".pdf": parse_pdf,
}
"""File suffix -> its parser; `reading` adds ``.zip``, which holds files rather than documents."""
