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
from .fusion import fuse, fusion_label, hybrid_weights
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


# From this many passages in the query's language on, BM25's per-language document frequencies, not the
# stopword list, weigh the query's stopwords in that language (docs/ranking.md: XQuAD and the sample).
STOPWORD_STATISTICS_PASSAGES = 100


def query_terms(query: str, language: Language, corpus_languages: frozenset[str]) -> list[str]:
    """The terms BM25 matches for `query`, pooled over the languages it is analysed in, each once
    (`analysis.query_terms` gives them per language and says why)."""
    by_language = analysis.query_terms(query, language.group, corpus_languages)
    return list(dict.fromkeys(term for terms in by_language.values() for term in terms))


class BM25Retriever:
    """BM25 over the passages' analysed terms, the query analysed in every language of the corpus: its
    stopwords dropped (those of each language it is matched in and its own), with statistics per passage
    language unless `Settings.bm25_statistics` is "corpus"."""

    name = "bm25"
    needs: tuple[str, ...] = ()
    label = "BM25 (rank-bm25, language-aware analysis)"

    def __init__(self, index: BM25Index, corpus_languages: frozenset[str], passages_per_language: Mapping[str, int],
                 settings: _RankingSettings) -> None:
        self.index = index
        self.corpus_languages = corpus_languages
        self.passages_per_language = passages_per_language
        self.settings = settings

    def search(self, query: QueryText, depth: int, earlier: Mapping[str, Sequence[Scored]]) -> Ranking:
        # Per-language statistics weigh the query's own stopwords once its language has enough passages;
        # below that, "far" in 1 of 11 English passages looks as rare as a name, and the list decides.
        group = query.language.group
        own_stopwords = (self.settings.bm25_statistics != "language"
                         or self.passages_per_language.get(group, 0) < STOPWORD_STATISTICS_PASSAGES)
        terms = analysis.query_terms(query.text, group, self.corpus_languages, stopwords=self.settings.stopwords,
                                     own_stopwords=own_stopwords)
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
    """The BM25 and dense lists fused (`search.fusion`): by default relative scores, BM25 weighted by the
    share of the corpus in the query's language; the old equal-weight RRF when `fusion` is "rrf". Its label
    names the fusion and its weights."""

    name = "hybrid"
    needs: tuple[str, ...] = ("bm25", "dense")

    def __init__(self, dense_label: Callable[[], str], fusion: str, passages_per_language: Mapping[str, int],
                 note: str = "") -> None:
        self._dense_label = dense_label
        self.fusion = fusion
        self.passages_per_language = passages_per_language
        self.note = note

    def search(self, query: QueryText, depth: int, earlier: Mapping[str, Sequence[Scored]]) -> Ranking:
        weights = hybrid_weights(self.fusion, query.language.group, self.passages_per_language)
        fused = fuse([list(earlier[name]) for name in self.needs], self.fusion, weights=weights, limit=depth)
        return Ranking(fused, fusion_label(self.fusion, ("BM25", self._dense_label()), weights), self.note)


class _RankingSettings(Protocol):
    bm25_statistics: str
    stopwords: bool
