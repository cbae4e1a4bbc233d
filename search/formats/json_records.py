"""JSON and JSON Lines: BEIR records (``_id``/``title``/``text``), lists of objects or strings, SQuAD files.

`load_json` is the one JSON parser of the readers: integers of any length (an id of 5,000 digits is
kept as its digits instead of hitting Python's int() digit limit) and nesting bounded by `max_nesting`.
"""

from __future__ import annotations

import json

from ..ids import JsonInteger, id_text
from ..limits import FileBudget, LimitExceeded
from ..types import Problem
from .base import (
    ID_KEYS,
    TEXT_KEYS,
    TITLE_KEYS,
    FileContext,
    Parsed,
    Record,
    find_key,
    iter_lines,
    listed_keys,
    no_text_column,
)
from .squad import is_squad, squad_paragraphs

_WRAPPERS = ("documents", "corpus", "passages", "docs", "data")
_CHECK_EVERY_LINES = 1000
_CHECK_EVERY_VALUES = 10_000


class JsonError(ValueError):
    """JSON that cannot be read: `message` says why (``invalid JSON: <reason> at column 3``), `reason` is
    the parser's own words, `line` where (when known)."""

    def __init__(self, message: str, reason: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.line = line


def load_json(text: str, budget: FileBudget | None = None) -> object:
    """Parse JSON text; raise JsonError (with the line when known) for invalid or too deeply nested JSON.

    Integers too long for int() come back as `JsonInteger`. With a `budget`, nesting deeper than its
    `max_nesting` raises `LimitExceeded` and the time budget is checked while the value is walked.

    >>> load_json('{"id": 1' + '0' * 5000 + '}')["id"].digits[:3]
    '100'
    """
    try:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer past int()'s digit limit: parse again, keeping long ones as digits
            value = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as error:
        raise JsonError(f"invalid JSON: {error.msg} at column {error.colno}", error.msg, error.lineno) from None
    except RecursionError:
        raise JsonError("JSON nested too deeply for Python's parser", "nested too deeply") from None
    if budget is not None and text.count("[") + text.count("{") > budget.limits.max_nesting:
        _check_nesting(value, budget)
    return value


def _parse_int(digits: str) -> int | JsonInteger:
    try:
        return int(digits)
    except ValueError:
        return JsonInteger(digits)


def _check_nesting(value: object, budget: FileBudget) -> None:
    """Walk containers without recursion, raising LimitExceeded past `max_nesting`."""
    stack = [(value, 1)]
    visited = 0
    while stack:
        current, depth = stack.pop()
        visited += 1
        if visited % _CHECK_EVERY_VALUES == 0:
            budget.check()
        children = current.values() if isinstance(current, dict) else current
        budget.check_nesting(depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def parse_jsonl(data: bytes, context: FileContext) -> Parsed:
    source, stem = context.source, context.stem
    decoded = context.decode(data)
    yield from decoded.problems
    if decoded.text is None:
        return
    found = False
    for line, raw in enumerate(iter_lines(decoded.text), start=1):
        if line % _CHECK_EVERY_LINES == 0:
            context.budget.check(line)
        if not raw.strip():
            continue
        found = True
        try:
            value = load_json(raw, context.budget)
        except JsonError as error:
            yield Problem(source, f"{error.message}; line skipped", line)
            continue
        except LimitExceeded as error:
            if error.limit != "max_nesting":
                raise
            yield Problem(source, f"{error}; line skipped", line)
            continue
        yield record_from_value(value, f"{stem}-{line}", context.text_column, source, line, "")
    if not found:
        yield Problem(source, "no text (the file holds only whitespace)")


def parse_json(data: bytes, context: FileContext) -> Parsed:
    source, stem, text_column = context.source, context.stem, context.text_column
    decoded = context.decode(data)
    yield from decoded.problems
    if decoded.text is None:
        return
    if not decoded.text.strip():
        yield Problem(source, "no text (the file holds only whitespace)")
        return
    try:
        value = load_json(decoded.text, context.budget)
    except JsonError as error:
        yield Problem(source, f"{error.message}; file skipped", error.line)
        return
    except LimitExceeded as error:
        if error.limit != "max_nesting":
            raise
        yield Problem(source, f"{error}; file skipped")
        return
    if isinstance(value, dict) and is_squad(value):
        squad = squad_paragraphs(value, source, context.budget)
        yield from squad.problems
        for paragraph in squad.paragraphs:
            yield Record(paragraph.doc_id, paragraph.context, paragraph.title)
        return
    if isinstance(value, dict):
        wrapped = next((key for key in _WRAPPERS if key in value), None)
        if wrapped is not None and isinstance(value[wrapped], list):
            value = value[wrapped]
        elif find_key(list(value), text_column, TEXT_KEYS) is not None:
            value = [value]
    if not isinstance(value, list):
        keys = listed_keys(list(value)) if isinstance(value, dict) else type(value).__name__
        yield Problem(
            source,
            f"expected a list of documents, SQuAD {{'data': [...]}} or an object with a text field; found {keys}",
        )
        return
    if not value:
        yield Problem(source, "an empty list: no documents")
    for number, item in enumerate(value, start=1):
        if number % _CHECK_EVERY_LINES == 0:
            context.budget.check()
        yield record_from_value(item, f"{stem}-{number}", text_column, source, None, f"item {number}: ")


def record_from_value(
    value: object, fallback_id: str, text_column: str | None, source: str, line: int | None, where: str
) -> Record | Problem:
    """A record from a JSON string or object (BEIR `_id`/`title`/`text`, or `id` + `text`/`contents`...)."""
    if isinstance(value, str):
        if not value.strip():
            return Problem(source, f"{where}empty text; skipped", line)
        return Record(fallback_id, value, "", line)
    if not isinstance(value, dict):
        return Problem(source, f"{where}expected an object or a string, found {json_type(value)}; skipped", line)
    keys = list(value)
    text_index = find_key(keys, text_column, TEXT_KEYS)
    if text_index is None:
        return Problem(source, where + no_text_column(keys, text_column, "keys"), line)
    text_key = keys[text_index]
    text = value[text_key]
    if isinstance(text, list) and all(isinstance(part, str) for part in text):
        text = "\n\n".join(text)
    if not isinstance(text, str):
        return Problem(source, f"{where}{text_key!r} holds {json_type(text)}, not text; skipped", line)
    if not text.strip():
        return Problem(source, f"{where}empty text in {text_key!r}; skipped", line)
    id_index = find_key(keys, None, ID_KEYS)
    doc_id = id_text(value[keys[id_index]]) if id_index is not None else None
    title_index = find_key(keys, None, TITLE_KEYS)
    title = value[keys[title_index]] if title_index is not None else ""
    return Record(doc_id or fallback_id, text, title if isinstance(title, str) else "", line)


def json_type(value: object) -> str:
    """How a JSON value is named in messages: "an object", "a list", "a number"..."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
