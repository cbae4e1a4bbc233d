"""The "Download bundle" zip: a view's settings, every column's results, the session's judgments and runs,
and a static HTML page of the columns that opens offline.

Members (`make_bundle`): ``settings.json`` (the view, its link, the corpus, what is in the zip and what was
left out), ``results.json`` and ``results.csv`` (every stage, `search.export`, CSV cells neutralised),
``qrels.trec``, ``queries.tsv`` and ``run-<stage>.trec`` (`ui.judging.export_files`, when anything was
judged), and ``view.html``. The page is drawn by the app's own renderers (`ui.columns`, escaping by
construction through `ui.html`, without the Explain and judging buttons that only the app can answer) with
the app's stylesheet inlined; it holds no script at all, and its Content-Security-Policy forbids scripts and
every outside request, so it opens the same offline.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from search.config import parse_line
from search.export import result_to_dict, results_to_csv
from search.stages import ordered
from search.types import SearchResult

from . import stylesheet
from .columns import render_column, render_summary
from .highlight import Marks
from .html import Markup, element, join
from .judging import SessionJudgments, export_files
from .labels import stage_title
from .rankflow import render_comparison
from .share import FIELDS, ViewState

BUNDLE_NAME = "rerank-explorer-bundle.zip"
PAGE_NAME = "view.html"
# No script, no outside request: only the inline stylesheet may apply.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


class Bundle(NamedTuple):
    """A bundle's zip bytes, its member names, and the files left out (name -> why)."""

    data: bytes
    members: tuple[str, ...]
    left_out: dict[str, str]


def make_bundle(result: SearchResult | None, session: SessionJudgments, view: ViewState, *, link: str = "",
                link_note: str = "", corpus: str = "", corpus_languages: Iterable[str] = (),
                created: datetime | None = None) -> Bundle:
    """Return the bundle of the latest search `result` drawn as `view` (k, score view, collapsing, score line), with
    the session's judgments. `link` is the view's shareable URL (kept as a link in the page only when it is
    http or https), `link_note` what it cannot carry, `corpus` what the index was built from.

    Raises ValueError when there is nothing to bundle: no search and no judgment.
    """
    if result is None and session.judgment_count == 0:
        raise ValueError("Nothing to bundle yet: search first (and judge results if you like), then download.")
    judged = export_files(session) if session.judgment_count else None
    files: dict[str, str] = {}
    if result is not None:
        line = parse_line(view.score_line)
        files["results.json"] = json.dumps(result_to_dict(result, score_line=line, score_view=view.score_view),
                                           ensure_ascii=False, indent=1)
        files["results.csv"] = results_to_csv(result, score_line=line, score_view=view.score_view)
        files[PAGE_NAME] = render_page(result, view, link=link, link_note=link_note, corpus=corpus,
                                       corpus_languages=corpus_languages)
    if judged is not None:
        files.update(judged.files)
    left_out = dict(judged.left_out) if judged is not None else {}
    settings = {
        "view": view.to_dict(), "link": link, "link_note": link_note or None, "corpus": corpus or None,
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
        "files": ["settings.json", *files], "left_out": left_out,
    }
    members = {"settings.json": json.dumps(settings, ensure_ascii=False, indent=1), **files}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text.encode("utf-8"))
    return Bundle(buffer.getvalue(), tuple(members), left_out)


def render_page(result: SearchResult, view: ViewState, *, link: str = "", link_note: str = "", corpus: str = "",
                corpus_languages: Iterable[str] = ()) -> str:
    """Return a whole HTML document of `result`'s columns as `view` draws them, with the settings above them.

    Every text from the corpus, the query or the link is escaped (`ui.html`); the page carries no script
    and forbids any (Content-Security-Policy), and the app's stylesheet is inlined, so it opens offline.
    """
    css = stylesheet()
    if "</" in css:  # the stylesheet is ours, but a closing tag inside it would end the <style> element
        raise ValueError("ui/style.css contains '</', which would close the inline <style>; remove it")
    languages = frozenset(corpus_languages)
    names = ordered(result.stages)
    marks = Marks()  # this page's: each passage analysed once for all its columns
    columns = [element("div", render_column(result.stages[name], result, k=view.k, score_view=view.score_view,
                                            collapse_documents=view.collapse, corpus_languages=languages,
                                            controls=False, score_line=parse_line(view.score_line), marks=marks),
                       class_="bundle-column")
               for name in names]
    head = element(
        "head",
        Markup('<meta charset="utf-8">'),
        Markup(f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'),
        Markup('<meta name="viewport" content="width=device-width, initial-scale=1">'),
        Markup('<meta name="referrer" content="no-referrer">'),
        element("title", f"{result.query} · retrieve-and-rerank explorer"),
        element("style", Markup(css)),
    )
    body = element(
        "body",
        element("header", element("h1", "Retrieve-and-rerank explorer: a saved view", class_="bundle-title"),
                element("p", element("span", "Query ", class_="bundle-label"),
                        element("q", result.query, class_="bundle-query")),
                _settings_list(view, corpus), _link_html(link, link_note), class_="bundle-head"),
        render_comparison(result, k=view.k, languages=sorted(languages)),
        element("main", join(columns), class_="rr-columns bundle-columns",
                data_columns=len(columns), aria_label=", ".join(stage_title(n) for n in names)),
        render_summary(result, view.k),
        class_="bundle-page",
    )
    return f"<!DOCTYPE html>\n{element('html', head, body, lang='en')}\n"


def _settings_list(view: ViewState, corpus: str) -> Markup:
    rows = [("Corpus", corpus)] if corpus else []
    for item in FIELDS:
        name, label = item.name, item.label
        value = getattr(view, name)
        if value is None or name == "query" or (name == "sample" and corpus):
            continue
        rows.append((label, ("yes" if value else "no") if isinstance(value, bool) else str(value)))
    return element("dl", join(join((element("dt", label), element("dd", value))) for label, value in rows),
                   class_="bundle-settings")


def _link_html(link: str, note: str) -> Markup | None:
    parts = urlsplit(link) if link else None
    if parts is not None and parts.scheme in {"http", "https"} and parts.netloc:
        shown = element("a", link, href=link, rel="noreferrer")
    else:
        shown = element("code", link) if link else None
    if shown is None and not note:
        return None
    return element("p", element("span", "Link to this view ", class_="bundle-label"), shown,
                   element("span", note, class_="bundle-note") if note else None, class_="bundle-link")
