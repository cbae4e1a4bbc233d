"""The whole page: every region's components (`Page`) and what the regions share (`AppContext`: the
configuration read at start-up, the model warm-up, the samples and the form)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import gradio as gr

from search import config
from search.warmup import Warmup

from .form import PageForm
from .session import SessionState

if TYPE_CHECKING:
    from .corpus import CorpusPanel
    from .evaluate import EvaluatePanel
    from .explain import ExplainPanel
    from .judgments import JudgingPanel
    from .search import SearchPanel
    from .sharing import SharePanel

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = {
    "polyglot-facts: 80 documents, 10 languages": ROOT / "corpora" / "polyglot-facts" / "corpus.jsonl",
    "mixed-formats: 6 files, 6 languages": ROOT / "corpora" / "mixed-formats",
}
NO_SAMPLE = "(none: use my files)"
# A link names a sample by the short name before the colon ("polyglot-facts").
SAMPLE_NAMES = {label.split(":")[0]: label for label in SAMPLES}
BUNDLED_JUDGMENTS = ROOT / "corpora" / "polyglot-facts"
APP_RERANKERS = 2  # the model panel offers reranker A and a reranker B to compare with (the engine takes more)


@dataclass(frozen=True)
class AppContext:
    """What every region reads: the configuration the process started with, the model warm-up and the
    page's form (filled in as the regions are laid out)."""

    settings: config.Config
    warmup: Warmup
    form: PageForm


class ApiOnly(NamedTuple):
    """Hidden components behind the `search` API endpoint (every stage as JSON in one call)."""

    button: gr.Button
    result: gr.JSON


class Page(NamedTuple):
    """Every region of the page."""

    tabs: gr.Tabs
    models: gr.HTML  # the model warm-up's line
    session: SessionState
    corpus: CorpusPanel
    search: SearchPanel
    explain: ExplainPanel
    judging: JudgingPanel
    evaluate: EvaluatePanel
    share: SharePanel
    api: ApiOnly
