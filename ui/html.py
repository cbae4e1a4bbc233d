"""The one way the UI builds HTML: elements whose text and attribute values are escaped by construction.

Text from a corpus or a query (passages, titles, ids, file names, model names, notes, errors) is a
plain `str`, and a plain `str` only ever reaches the page through `markupsafe.escape`. Only `Markup`
values, i.e. what `element` and `join` return, pass through as HTML:

>>> element("p", "a <b> tag", element("mark", "run"), class_="snippet")
Markup('<p class="snippet">a &lt;b&gt; tag<mark>run</mark></p>')
>>> element("details", "x", open=True, title='say "hi"', data_rank=3, hidden=None)
Markup('<details open title="say &#34;hi&#34;" data-rank="3">x</details>')
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from markupsafe import Markup, escape

__all__ = ["Markup", "classes", "element", "escape", "join"]

_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
# Attribute names may be camelCase: SVG's viewBox must keep its case where the SVG is read as XML.
_ATTRIBUTE = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*\Z")
Child = str | int | float | Markup | None


def element(tag: str, *children: Child, **attributes: object) -> Markup:
    """Return ``<tag attributes>children</tag>`` as `Markup`.

    Children that are `Markup` pass as they are; any other child is escaped (None is left out).
    Attribute names are Python names: a trailing ``_`` is dropped (``class_``) and ``_`` becomes
    ``-`` (``data_stage`` -> ``data-stage``); SVG's camelCase names keep their case (``viewBox``).
    Values are escaped; None and False leave the attribute out, True writes it bare (``open``). Raises
    ValueError for a tag name that is not a plain lower-case HTML name, or an attribute name that is not
    letters, digits and hyphens: names come from code, never from data.
    """
    if not _NAME.match(tag):
        raise ValueError(f"tag={tag!r} is not a plain HTML tag name")
    opening = [tag]
    for key, value in attributes.items():
        name = key.rstrip("_").replace("_", "-")
        if not _ATTRIBUTE.match(name):
            raise ValueError(f"attribute {key!r} is not a plain HTML (or SVG, like viewBox) attribute name")
        if value is None or value is False:
            continue
        opening.append(name if value is True else f'{name}="{escape(value)}"')
    return Markup(f"<{' '.join(opening)}>{join(children)}</{tag}>")


def join(parts: Iterable[Child], separator: str = "") -> Markup:
    """Return the parts one after another as `Markup`: `Markup` as it is, anything else escaped (None left out)."""
    return Markup(escape(separator)).join(escape(part) for part in parts if part is not None)


def classes(*names: str | None | bool) -> str:
    """Return a class attribute value from the names that are set: ``classes("move", "up", False and "x")``
    gives ``"move up"``."""
    return " ".join(name for name in names if isinstance(name, str) and name)
