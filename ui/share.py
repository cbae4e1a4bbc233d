"""A shareable view: what the page's URL carries, and reading it back strictly.

`ViewState` is the view a link restores: the sample corpus, the query, k, the rerank depth, the candidate
stage, the score view, document collapsing, the passage window and the models (dense, reranker, backend,
and the optional compare reranker). Uploaded files are never in a link; `ShareLink.note` says so.

`ViewState` is also the one description of the page's form: `FIELDS` maps each field to its URL parameter,
its reader, its label (the bundle's settings) and the build setting it sets (`search.pipeline.Settings`),
so a new field is one line in the dataclass and one in the table, and appears in the link, the bundle, the
restore and the build with no other edit. `build_overrides` turns a view into the build's settings.
`parse_view` never raises: a bad value (an unknown sample or model, k out of range, a word where a number
goes) gives the default and a message naming the value and the fix.

>>> options = ShareOptions(samples=("polyglot-facts",), rerankers=("late-interaction",))
>>> parsed = parse_view({"sample": "polyglot-facts", "q": "tea", "k": "500"}, options)
>>> parsed.state.sample, parsed.state.query, parsed.state.k, parsed.problems
('polyglot-facts', 'tea', 10, ('k=500 in the link is out of range; use 1 to 50. Using k=10.',))
>>> query_string(parsed.state)
'?sample=polyglot-facts&q=tea&k=10&depth=20&from=hybrid&score=raw&docs=0&line=default'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple
from urllib.parse import quote, urlencode

from search import config
from search.config import parse_line
from search.stages import FIRST_STAGES

from .html import Markup, element, join

MAX_QUERY_CHARS = config.default("max_query_chars")
SCORE_VIEWS = ("raw", "sigmoid")


def line_text(value: object) -> str:
    """A score-line setting as the link and the page's field hold it: "default", "none" or a number
    ("0.8"); raises ValueError (naming the value and what is accepted) for anything else.

    >>> line_text(0.80), line_text(" OFF "), line_text("")
    ('0.8', 'none', 'default')
    """
    setting = parse_line(value)
    return setting if isinstance(setting, str) else f"{setting:g}"
UPLOADED_NOTE = "The link cannot carry uploaded files: whoever opens it uploads them and builds again."


@dataclass(frozen=True)
class ViewState:
    """One view of the page, as a link carries it. None means "not in the link" (the opener's default)."""

    sample: str | None = None  # a sample corpus's short name, e.g. "polyglot-facts"
    query: str = ""
    k: int = config.default("k")
    rerank_depth: int = config.default("rerank_depth")
    candidates_from: str = config.default("candidates_from")
    score_view: str = "raw"
    collapse: bool = False
    score_line: str = line_text(config.default("score_line"))  # "default", "none" or a score
    window: int | None = None
    overlap: int | None = None
    index_titles: bool | None = None
    dense_model: str | None = None
    reranker_model: str | None = None
    backend: str | None = None
    # The second reranker of a comparison; an app without that field reads and keeps it but shows nothing.
    compare_reranker: str | None = None
    compare_backend: str | None = None

    def to_dict(self) -> dict[str, object]:
        """Every field by name (for a settings file)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}


OVERLAP_STEP = int(config.OPTION["overlap"].step)
"""The step of the overlap slider: an overlap put in for a bad one is a multiple of it."""


def _range(name: str) -> tuple[int, int]:
    low, high, _ = config.limits(name)
    return int(low), int(high)


@dataclass(frozen=True)
class ShareOptions:
    """What the app offers, which a link's values are checked against. A model list of None accepts any
    name (the operator allowed custom models); an empty one accepts none."""

    samples: tuple[str, ...] = ()
    dense_models: tuple[str, ...] | None = ()
    rerankers: tuple[str, ...] | None = ()
    backends: tuple[str, ...] = ()
    k_range: tuple[int, int] = _range("k")
    depth_range: tuple[int, int] = _range("rerank_depth")
    window_range: tuple[int, int] = _range("window")
    overlap_range: tuple[int, int] = _range("overlap")
    max_query_chars: int = MAX_QUERY_CHARS
    defaults: ViewState = field(default_factory=ViewState)


class ParsedView(NamedTuple):
    """A link read back: the view (defaults where a value was missing or bad), what was wrong, and which
    fields the link set."""

    state: ViewState
    problems: tuple[str, ...]
    given: frozenset[str]


class ShareLink(NamedTuple):
    """The query string of a view and the note shown beside it (e.g. that uploads are not in it)."""

    query_string: str
    note: str


Reader = Callable[[str, str, ShareOptions], object]  # (raw value, parameter, options) -> value; ValueError if bad


class Field(NamedTuple):
    name: str  # the ViewState field
    parameter: str  # its URL parameter
    read: Reader
    label: str  # how the bundle's page names it
    setting: str | None = None  # the build setting (search.pipeline.Settings field) it sets, if any


# -- readers: each returns the value or raises ValueError with the message the user sees -------------

def _integer(bounds: Callable[[ShareOptions], tuple[int, int]]) -> Reader:
    def read(raw: str, parameter: str, options: ShareOptions) -> int:
        low, high = bounds(options)
        if not re.fullmatch(r"[+-]?\d{1,9}", raw.strip()):
            raise ValueError(f"{parameter}={raw!r} in the link is not a whole number; use {low} to {high}.")
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"{parameter}={value} in the link is out of range; use {low} to {high}.")
        return value
    return read


def _choice(choices: Callable[[ShareOptions], Sequence[str] | None], what: str) -> Reader:
    def read(raw: str, parameter: str, options: ShareOptions) -> str:
        value = raw.strip()
        offered = choices(options)
        if not value:
            raise ValueError(f"{parameter} in the link is empty; name a {what}.")
        if offered is None:  # any name, but still one line of plain text
            if len(value) > 200 or not value.isprintable():
                raise ValueError(f"{parameter} in the link is not a {what} name.")
            return value
        if value not in offered:
            listed = ", ".join(offered) or "none"
            raise ValueError(f"{parameter}={_shown(value)} in the link is not a {what} offered here ({listed}).")
        return value
    return read


def _flag(raw: str, parameter: str, options: ShareOptions) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{parameter}={_shown(raw)} in the link is not 0 or 1.")


def _line(raw: str, parameter: str, options: ShareOptions) -> str:
    try:
        return line_text(raw[:40])
    except ValueError:
        raise ValueError(f"{parameter}={_shown(raw)} in the link is not a score line; use default, none or a "
                         "number such as 0.8.") from None


def _query(raw: str, parameter: str, options: ShareOptions) -> str:
    # Control characters (a pasted NUL, a bidi override) become spaces; the text stays text.
    text = "".join(" " if unicodedata.category(char) in {"Cc", "Cf"} else char for char in raw)
    text = " ".join(text.split())
    if len(text) > options.max_query_chars:
        raise ValueError(f"{parameter} in the link is {len(text):,} characters long; a query has at most "
                         f"{options.max_query_chars:,} (SEARCH_MAX_QUERY_CHARS).")
    return text


FIELDS: tuple[Field, ...] = (
    Field("sample", "sample", _choice(lambda options: options.samples, "sample corpus"), "Sample corpus"),
    Field("query", "q", _query, "Query"),
    Field("k", "k", _integer(lambda options: options.k_range), "k"),
    Field("rerank_depth", "depth", _integer(lambda options: options.depth_range), "Rerank depth"),
    Field("candidates_from", "from", _choice(lambda options: FIRST_STAGES, "candidate stage"),
          "Reranker candidates from"),
    Field("score_view", "score", _choice(lambda options: SCORE_VIEWS, "score view"), "Reranker score"),
    Field("collapse", "docs", _flag, "Best passage per document"),
    Field("score_line", "line", _line, "Score line"),
    Field("window", "window", _integer(lambda options: options.window_range), "Passage window", "window"),
    Field("overlap", "overlap", _integer(lambda options: options.overlap_range), "Overlap", "overlap"),
    Field("index_titles", "titles", _flag, "Titles indexed with passages", "index_titles"),
    Field("dense_model", "dense", _choice(lambda options: options.dense_models, "dense model"), "Dense model",
          "dense_model"),
    Field("reranker_model", "reranker", _choice(lambda options: options.rerankers, "reranker"), "Reranker"),
    Field("backend", "backend", _choice(lambda options: options.backends, "backend"), "Backend", "backend"),
    Field("compare_reranker", "compare", _choice(lambda options: options.rerankers, "reranker"), "Compared with"),
    Field("compare_backend", "compare_backend", _choice(lambda options: options.backends, "backend"),
          "Backend of B"),
)
PARAMETERS = {item.parameter: item for item in FIELDS}


def parse_view(params: Mapping[str, str], options: ShareOptions) -> ParsedView:
    """Read a link's query parameters into a `ViewState`; never raises.

    Each bad value is replaced by `options.defaults`' and described in `problems` (naming the parameter,
    the value and what is accepted). Parameters the app does not know (Gradio's own, e.g. ``__theme``) are
    ignored. Raw values are never echoed in full: a message quotes at most 60 characters of one.
    """
    values: dict[str, object] = {}
    problems: list[str] = []
    given: set[str] = set()
    for parameter, raw in params.items():
        item = PARAMETERS.get(parameter)
        if item is None:
            continue
        default = getattr(options.defaults, item.name)
        try:
            if not isinstance(raw, str) or len(raw) > max(options.max_query_chars * 4, 2_000):
                raise ValueError(f"{parameter} in the link is too long to be a setting.")
            values[item.name] = item.read(raw, parameter, options)
            given.add(item.name)
        except ValueError as error:
            fallback = f" Using {parameter}={default}." if default not in (None, "") else " Using the default."
            problems.append(f"{error}{fallback}")
    state = replace(options.defaults, **values)
    if state.overlap is not None and state.window is not None and state.overlap >= state.window:
        fallback = _overlap_below(state.window, options.defaults.overlap)
        where = "in the link" if "overlap" in given else "(the default)"
        problems.append(f"overlap={state.overlap} {where} is not smaller than window={state.window}; "
                        f"using overlap={fallback}.")
        state = replace(state, overlap=fallback)
    return ParsedView(state, tuple(problems), frozenset(given))


def _overlap_below(window: int, default: int | None) -> int:
    """A valid overlap for `window`: the default when it is smaller than the window, else the largest
    multiple of OVERLAP_STEP below the window (never below 0)."""
    largest = max(0, (window - 1) // OVERLAP_STEP * OVERLAP_STEP)
    return largest if default is None else max(0, min(default, largest))


def query_string(state: ViewState) -> str:
    """The URL query string of a view ("?sample=...&q=..."), fields in `FIELDS` order; None fields and an
    empty query are left out. `parse_view` reads it back to the same view."""
    pairs = []
    for item in FIELDS:
        value = getattr(state, item.name)
        if value is None or (item.name == "query" and not value):
            continue
        pairs.append((item.parameter, ("1" if value else "0") if isinstance(value, bool) else str(value)))
    return "?" + urlencode(pairs, quote_via=quote, safe="")


def build_overrides(state: ViewState) -> dict[str, object]:
    """The build settings a view names (`search.pipeline.Settings` field -> value; None: the default),
    with its rerankers as (model, backend) pairs: the reranker and, when one is chosen, the one it is
    compared with.

    >>> build_overrides(ViewState(window=128, reranker_model="auto", compare_reranker="late-interaction"))["rerankers"]
    [('auto', ''), ('late-interaction', '')]
    """
    overrides: dict[str, object] = {item.setting: getattr(state, item.name) for item in FIELDS if item.setting}
    rerankers = [(state.reranker_model or "auto", "")] if state.reranker_model else None
    if state.compare_reranker:
        rerankers = [*(rerankers or [(config.current().rerankers[0][0], "")]),
                     (state.compare_reranker, state.compare_backend or "")]
    overrides["rerankers"] = rerankers
    return overrides


def share_link(state: ViewState, *, uploaded: bool) -> ShareLink:
    """The link of a view and its note: a view of uploaded files carries no corpus, and says so."""
    if uploaded:
        return ShareLink(query_string(replace(state, sample=None)), UPLOADED_NOTE)
    return ShareLink(query_string(state), "")


def render_share_note(note: str, problems: Sequence[str] = ()) -> Markup:
    """Return the lines beside the link: what it cannot carry, and what was wrong with the link this page
    was opened with (each a `p.share-note`, problems with ``data-kind="problem"``); all text escaped.

    >>> str(render_share_note("", ["k=<b> is bad."]))
    '<div class="share-notes"><p class="share-note" data-kind="problem">k=&lt;b&gt; is bad.</p></div>'
    """
    lines = [element("p", text, class_="share-note", data_kind="problem") for text in problems]
    if note:
        lines.append(element("p", note, class_="share-note", data_kind="note"))
    return element("div", join(lines), class_="share-notes")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


# In the browser (wired with `js=`): the hidden box's "?sample=..." becomes the full link in the link box,
# and the address bar shows it too, without a reload. Same origin and path as the page, so replaceState
# cannot throw; the try is for browsers that refuse it in a sandboxed frame.
LINK_JS = """
(query) => {
  if (!query) return "";
  const url = window.location.origin + window.location.pathname + query;
  try { window.history.replaceState(window.history.state, "", url); } catch (error) { /* the box still has it */ }
  return url;
}
"""
# Copy link: the clipboard API where the page is a secure context, else select the box's text and copy it.
COPY_JS = """
async (link) => {
  const button = document.querySelector('#copy-link');
  try {
    await navigator.clipboard.writeText(link);
  } catch (error) {
    const box = document.querySelector('#share-link textarea, #share-link input');
    if (box) { box.select(); document.execCommand('copy'); }
  }
  if (button) button.dataset.copied = String(Date.now());
}
"""
