"""What every format parser shares: the record it yields, what it knows about its file, key lookup."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ..decoding import DecodedText, decode_text
from ..limits import FileBudget
from ..types import Problem

TEXT_KEYS = ("text", "body", "content", "passage", "contents", "document", "paragraph", "context")
ID_KEYS = ("_id", "id", "doc_id", "docid")
TITLE_KEYS = ("title", "name", "heading")
_SHOWN_KEYS = 30
_SHOWN_KEY_CHARS = 60


class Record(NamedTuple):
    """A document as a parser found it, before its id is made unique and its source attached."""

    doc_id: str
    text: str
    title: str = ""
    line: int | None = None


@dataclass(frozen=True)
class FileContext:
    """What a parser knows about the file it reads: its display `source`, the `stem` that names
    documents without an id, the user's `text_column`, the `budget` it must `check()` as it goes, and the
    `encoding` the user gave for the upload (None: detect)."""

    source: str
    stem: str
    text_column: str | None
    budget: FileBudget
    encoding: str | None = None

    def decode(self, data: bytes, declared: str | None = None) -> DecodedText:
        """The file's bytes as text (`search.decoding.decode_text`), with the upload's encoding if given."""
        return decode_text(data, self.source, declared, encoding=self.encoding)


Parsed = Iterator[Record | Problem]
Parser = Callable[[bytes, FileContext], Parsed]


def tidy(text: str) -> str:
    """Text with ``\\n`` line ends, without NULs, stripped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()


def iter_lines(text: str) -> Iterator[str]:
    """The lines of `text` as ``text.split("\\n")`` gives them, one at a time: a file of 25 million short
    lines is never a list of 25 million strings, and reading can stop at a limit without having made them.

    >>> list(iter_lines("a\\nb\\n"))
    ['a', 'b', '']
    """
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def whole_file(text: str, context: FileContext, title: str) -> Record | Problem:
    """The file as one document named by its stem, or a Problem when it holds only whitespace."""
    if not text.strip():
        return Problem(context.source, "no text (the file holds only whitespace)")
    return Record(context.stem, text, title)


def find_key(keys: Sequence[str], wanted: str | None, candidates: Sequence[str]) -> int | None:
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


def no_text_column(keys: Sequence[str], text_column: str | None, what: str) -> str:
    """Why no text column/key was found in `keys` (`what`: "columns" or "keys"), and the fix."""
    listed = listed_keys(keys)
    if text_column is not None:
        return f"no {what[:-1]} named {text_column!r} (text_column={text_column!r}); the {what} are: {listed}"
    return (
        f"no text {what[:-1]} found (looked for {', '.join(TEXT_KEYS)}); the {what} are: {listed}. "
        f"Name the text {what[:-1]} with text_column='...' (CLI: --text-column ...)"
    )


def listed_keys(keys: Sequence[str]) -> str:
    """Keys or column names for a message: quoted, long ones cut, at most 30 ("none" when empty)."""
    shown = [repr(key) if len(key) <= _SHOWN_KEY_CHARS else repr(key[:_SHOWN_KEY_CHARS] + "…")
             for key in keys[:_SHOWN_KEYS]]
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return (", ".join(shown) or "none") + more
