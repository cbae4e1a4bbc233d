"""Document and query ids: one rule for turning a file's value into an id, and one for keeping ids unique.

Used by every reader (corpus records, SQuAD paragraphs and questions, BEIR queries), so an id written
the same way in a corpus and in its judgments always comes out the same.
"""

from __future__ import annotations

from typing import NamedTuple


class JsonInteger(NamedTuple):
    """A JSON integer too long for Python's int() (over 4,300 digits), kept as its digits."""

    digits: str


def id_text(value: object) -> str | None:
    """A value as an id: strings stripped, numbers written as in the file (``3.0`` as ``3``); None when
    missing, blank or not an id (a boolean, a list, an object).

    >>> id_text(" p1 "), id_text(7), id_text(3.0), id_text(None), id_text("  "), id_text(True)
    ('p1', '7', '3', None, None, None)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, JsonInteger):
        return value.digits
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (str, int, float)):
        return str(value).strip() or None
    return None


class UniqueIds:
    """Hands out ids unique within one read: a repeated id is kept as ``id~2`` (``~3``...).

    >>> ids = UniqueIds()
    >>> ids.claim("a", "x.txt"), ids.claim("a", "y.txt")
    (('a', None), ('a~2', "duplicate id 'a' (first used at x.txt); kept as 'a~2'"))
    """

    def __init__(self) -> None:
        self._origin: dict[str, str] = {}
        self._next_copy: dict[str, int] = {}

    def claim(self, wanted: str, origin: str) -> tuple[str, str | None]:
        """(the id to use, a warning when `wanted` was taken and a copy number was added); `origin` says
        where this id comes from, for the warning about a later duplicate."""
        if wanted not in self._origin:
            self._origin[wanted] = origin
            return wanted, None
        copy = self._next_copy.get(wanted, 2)
        while f"{wanted}~{copy}" in self._origin:
            copy += 1
        self._next_copy[wanted] = copy + 1
        renamed = f"{wanted}~{copy}"
        self._origin[renamed] = origin
        return renamed, f"duplicate id {wanted!r} (first used at {self._origin[wanted]}); kept as {renamed!r}"

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._origin
