"""Plain text and Markdown: the whole file is one document; a Markdown title is its first ``# heading``."""

from __future__ import annotations

from .base import FileContext, Parsed, iter_lines, whole_file


def parse_plain(data: bytes, context: FileContext) -> Parsed:
    decoded = context.decode(data)
    yield from decoded.problems
    if decoded.text is not None:
        yield whole_file(decoded.text, context, "")


def parse_markdown(data: bytes, context: FileContext) -> Parsed:
    decoded = context.decode(data)
    yield from decoded.problems
    if decoded.text is not None:
        yield whole_file(decoded.text, context, markdown_title(decoded.text, context))


def markdown_title(text: str, context: FileContext | None = None) -> str:
    """The first level-1 ATX heading (``# Title``, closing ``#``s dropped) outside code fences, or "".

    Parsed by hand, in time linear in the line: a regular expression with a lazy title and optional
    closing sequence backtracks quadratically on a heading padded with spaces.

    >>> markdown_title("```\\n# not this\\n```\\n#   Title  ##\\n# Later")
    'Title'
    """
    fence = None
    for number, line in enumerate(iter_lines(text), start=1):
        if context is not None and number % 1000 == 0:
            context.budget.check(number)
        marker = _fence(line)
        if marker:
            fence = None if fence == marker else fence or marker
            continue
        if fence is None and (title := _level_one_heading(line)) is not None:
            return title
    return ""


def _indent(line: str) -> int | None:
    """Leading spaces (at most 3, as CommonMark allows), or None when there are more."""
    stripped = line.lstrip(" ")
    indent = len(line) - len(stripped)
    return indent if indent <= 3 else None


def _fence(line: str) -> str | None:
    indent = _indent(line)
    if indent is None:
        return None
    start = line[indent : indent + 3]
    return start if start in ("```", "~~~") else None


def _level_one_heading(line: str) -> str | None:
    """The title of a ``# Title`` line ("" for a bare ``#``, which ends the search), or None for other lines."""
    indent = _indent(line)
    if indent is None or line[indent : indent + 1] != "#":
        return None
    rest = line[indent + 1 :]
    if rest[:1] not in (" ", "\t"):
        return None
    content = rest.strip(" \t")
    if not content:
        return "" if len(rest) >= 2 else None  # '# ' is no heading, '#  ' an empty one
    closing = content.rstrip("#")
    if closing and closing != content and closing[-1] in " \t":
        content = closing.rstrip(" \t")  # a closing sequence: "#"s after a space
    return content.strip()
