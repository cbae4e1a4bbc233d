"""The first stages behind one interface: BM25 and dense search the corpus, hybrid fuses their lists.

`Index.retrieve` runs every first stage a search asks for through `Retriever.search`, in the stage
registry's order (`search.stages.FIRST_STAGES`), handing each the lists of the stages it `needs`; a new
first stage is a new class here and a line in the registry, not a branch in the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from . import analysis
from .bm25 import BM25Index
from .dense import DenseIndex
from .fusion import reciprocal_rank_fusion
from .inference import TextEncoder
from .types import Language, Scored


@dataclass(frozen=True)
class QueryText:
    """A query as every first stage sees it: its text and its detected language."""

    text: str
    language: Language


class Ranking(NamedTuple):
    """A first stage's answer: the scored passages, best first, the model that ranked them, and a note
    (e.g. why that model is a fallback)."""

    scored: list[Scored]
    model: str
    note: str = ""


class StageFailed(Exception):
    """A first stage could not run for this query (e.g. a remote encoder stopped answering); the message
    says why, and the search goes on with the other stages."""


class Retriever(Protocol):
    """One first stage. `needs` names the earlier stages whose rankings `search` combines (() for a
    stage that searches the corpus itself)."""

    name: str
    needs: tuple[str, ...]

    def search(self, query: QueryText, depth: int, earlier: Mapping[str, Sequence[Scored]]) -> Ranking:
        """The top `depth` passages for `query`. Raises StageFailed when it can't run."""
        ...


def query_terms(query: str, language: Language, corpus_languages: frozenset[str]) -> list[str]:
    """Analyse a query for BM25 the way each passage language was analysed.

    Every passage was stemmed in its own detected language, so a query matches a passage only through
    the terms that passage's analysis would give it. The query is therefore analysed in its detected
    language and in each language of the corpus, keeping each distinct term once. This also rescues
    short queries and short passages whose language detection is unsure. In a monolingual corpus it
    is plain analysis in that language.
    """
    seen: dict[str, None] = {}
    for group in [language.group, *sorted(corpus_languages - {language.group})]:
        for term in analysis.terms(query, group):
            seen.setdefault(term, None)
    return list(seen)


class BM25Retriever:
    """BM25 over the passages' analysed terms, the query analysed in every language of the corpus."""

    name = "bm25"
    needs: tuple[str, ...] = ()
    label = "BM25 (rank-bm25, language-aware analysis)"

    def __init__(self, index: BM25Index, corpus_languages: frozenset[str]) -> None:
        self.index = index
        self.corpus_languages = corpus_languages

    def search(self, query: QueryText, depth: int, earlier: Mapping[str, Sequence[Scored]]) -> Ranking:
        terms = query_terms(query.text, query.language, self.corpus_languages)
        return Ranking(self.index.search(terms, depth), self.label)


class DenseRetriever:
    """Nearest passages to the query's embedding (FAISS inner product over normalised vectors)."""

    name = "dense"
    needs: tuple[str, ...] = ()

    def __init__(self, index: DenseIndex, encoder: Callable[[], TextEncoder], note: str = "") -> None:
        self.index = index
        self._encoder = encoder
        self.note = note

    def search(self, query: QueryText, depth: int, earlier: Mapping[str, Sequence[Scored]]) -> Ranking:
        encoder = self._encoder()
        try:
            vector = encoder.embed([query.text], is_query=True)[0]
        except (ValueError, OSError) as error:  # e.g. a remote encoder's endpoint that stopped answering
            raise StageFailed(f"the dense model could not embed the query: {error}") from error
        return Ranking(self.index.search(vector, depth), encoder.label, self.note)


class HybridRetriever:
    """Reciprocal rank fusion of the BM25 and dense lists."""

    name = "hybrid"
    needs: tuple[str, ...] = ("bm25", "dense")

    def __init__(self, dense_label: Callable[[], str], note: str = "") -> None:
        self._dense_label = dense_label
        self.note = note

    def search(self, query: QueryText, depth: int, earlier: Mapping[str, Sequence[Scored]]) -> Ranking:
        fused = reciprocal_rank_fusion([list(earlier[name]) for name in self.needs], limit=depth)
        return Ranking(fused, f"RRF(BM25, {self._dense_label()})", self.note)
