"""ui.html: text reaches the page escaped, only Markup passes through, and names come from code."""

from __future__ import annotations

import pytest

from ui.html import Markup, classes, element, join

PAYLOAD = "<script>alert(1)</script> <img src=x onerror=alert(1)> \"q\" 'a' &amp;"
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt; &#34;q&#34; &#39;a&#39; "
           "&amp;amp;")


def test_text_children_and_attribute_values_are_escaped():
    built = element("p", PAYLOAD, class_="snippet", title=PAYLOAD, data_rank=3)
    assert built == f'<p class="snippet" title="{ESCAPED}" data-rank="3">{ESCAPED}</p>'
    assert isinstance(built, Markup)


def test_markup_children_pass_and_plain_strings_never_do():
    inner = element("mark", "run")
    assert element("p", "a ", inner, " b") == "<p>a <mark>run</mark> b</p>"
    assert element("p", "<mark>run</mark>") == "<p>&lt;mark&gt;run&lt;/mark&gt;</p>", "a str is text, not HTML"
    assert join(["<b>", inner, None, 7]) == "&lt;b&gt;<mark>run</mark>7"
    assert join(["a", "b"], separator=" & ") == "a &amp; b"


def test_boolean_and_missing_attributes():
    assert element("details", "x", open=True, hidden=False, title=None) == "<details open>x</details>"
    assert element("span", aria_hidden="true", class_=classes("move", "up", False, None, "")) == (
        '<span aria-hidden="true" class="move up"></span>')


def test_names_that_are_not_plain_html_names_are_refused():
    with pytest.raises(ValueError, match="tag"):
        element("img src=x onerror=alert(1)")
    with pytest.raises(ValueError, match="attribute"):
        element("span", **{"onclick=alert(1) x": "1"})
    with pytest.raises(ValueError, match="tag"):
        element("Script")
    with pytest.raises(ValueError, match="attribute"):
        element("svg", **{'viewBox="0" onload': "x"})
    assert element("svg", viewBox="0 0 10 5") == '<svg viewBox="0 0 10 5"></svg>', "camelCase SVG names keep it"
