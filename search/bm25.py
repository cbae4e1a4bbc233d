"""BM25 over analysed passages: rank_bm25's statistics, Lucene's idf, and a sparse matrix for speed.

`rank_bm25.BM25Okapi` computes the corpus statistics; `LuceneBM25Okapi` swaps its idf for Lucene's,
which is positive for every term; `BM25Index` turns the fitted statistics into a term -> passage
weight matrix once, so a query costs one sparse row slice and a sum instead of a Python loop over
every passage per query term.

Statistics per language: given each passage's language, `BM25Index.build` fits one model per language
(passage count, document frequencies, average length), as if each language had its own index, the way
Lucene-based engines keep one field per language. In a mixed corpus a statistic shared by all
languages gets things backwards: an English stopword occurs only in the English passages, so across
the whole index it looks rare and weighs as much as a name. Per language, "the" is in nearly every
English passage and weighs almost nothing. A query then gives its terms per language
(`search.analysis.query_terms`), each matched only against the passages of that language.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import rank_bm25
from scipy import sparse

from search.types import Scored

# Chosen on XQuAD (7 languages x 1190 questions, search.analysis terms): k1=0.9, b=0.6 gave the best
# mean nDCG@10, 0.953, of k1 in {0.6, 0.9, 1.2} x b in {0.5, 0.6, 0.75} (all within 0.951 to 0.953;
# Lucene's 1.2/0.75 is the 0.951). k1=2.0 or b=0.9 did worse.
DEFAULT_K1 = 0.9
DEFAULT_B = 0.6

Statistics = Literal["language", "corpus"]
STATISTICS: tuple[Statistics, ...] = ("language", "corpus")
# The one language key of an index whose statistics are the whole corpus'.
_CORPUS = ""


class LuceneBM25Okapi(rank_bm25.BM25Okapi):
    """`rank_bm25.BM25Okapi` with Lucene's always-positive idf ``log(1 + (N - n + 0.5) / (n + 0.5))``.

    BM25Okapi's idf ``log((N - n + 0.5) / (n + 0.5))`` is zero or negative for a term found in half or
    more of the N passages (it then floors it at ``epsilon`` times the mean idf), so in a corpus of two
    or three passages the one passage that holds a query word may not come first. Lucene's form is the
    same curve shifted above zero: every matching term adds to the score, rarer terms add more.
    """

    def _calc_idf(self, nd: Mapping[str, int]) -> None:
        for term, passage_count in nd.items():
            self.idf[term] = math.log(1.0 + (self.corpus_size - passage_count + 0.5) / (passage_count + 0.5))
        self.average_idf = sum(self.idf.values()) / len(self.idf) if self.idf else 0.0


class BM25Index:
    """A BM25 index over analysed passages (lists of terms), scored with `LuceneBM25Okapi`'s formula, with
    statistics per language or for the whole corpus.

    Build it with `BM25Index.build`; it keeps no passage text, only the vocabulary and the weights.
    """

    def __init__(self, vocabulary: Mapping[tuple[str, str], int], weights: sparse.csr_matrix, k1: float, b: float,
                 languages: frozenset[str] = frozenset({_CORPUS})) -> None:
        self._vocabulary = vocabulary  # (language, term) -> row; language is "" with corpus statistics
        self._weights = weights  # (terms, passages): the BM25 contribution of each term to each passage
        self.k1 = k1
        self.b = b
        self.languages = languages

    @property
    def statistics(self) -> Statistics:
        return "corpus" if self.languages == {_CORPUS} else "language"

    @classmethod
    def build(cls, passage_terms: Sequence[Sequence[str]], k1: float = DEFAULT_K1, b: float = DEFAULT_B, *,
              languages: Sequence[str] | None = None) -> BM25Index:
        """Return an index of `passage_terms` (one list of terms per passage, in corpus order).

        `languages` gives the language group each passage was analysed in; then each language has its own
        statistics and its terms match only its passages. None: one set of statistics for the corpus.
        Raises ValueError when there are no passages, when `languages` has another length, or when
        `k1` < 0 or `b` is outside [0, 1].

        >>> index = BM25Index.build([["red", "apple"], ["green", "pear"]])
        >>> index.search(["pear"], k=5)[0].index
        1
        >>> index = BM25Index.build([["the", "moon"], ["the", "tea"], ["der", "mond"]], languages=["en", "en", "de"])
        >>> [hit.index for hit in index.search({"en": ["moon"], "de": ["mond"]}, k=5)]
        [0, 2]
        """
        if len(passage_terms) == 0:
            raise ValueError("passage_terms is empty; BM25 needs at least one passage to index")
        if not k1 >= 0:
            raise ValueError(f"k1={k1} is negative; use k1 >= 0 (typically 0.9 to 2.0)")
        if not 0 <= b <= 1:
            raise ValueError(f"b={b} is outside [0, 1]; use 0 <= b <= 1 (typically 0.75)")
        if languages is None:
            return cls.from_model(LuceneBM25Okapi([list(terms) for terms in passage_terms], k1=k1, b=b))
        if len(languages) != len(passage_terms):
            raise ValueError(f"languages has {len(languages)} entries for {len(passage_terms)} passages; give one "
                             "language group per passage, or None for statistics over the whole corpus")
        members: dict[str, list[int]] = {}
        for position, language in enumerate(languages):
            members.setdefault(language, []).append(position)
        vocabulary: dict[tuple[str, str], int] = {}
        parts = []
        for language, positions in members.items():
            model = LuceneBM25Okapi([list(passage_terms[i]) for i in positions], k1=k1, b=b)
            term_ids, passage_ids, weights = _weight_entries(model)
            rows = np.fromiter((vocabulary.setdefault((language, term), len(vocabulary)) for term in model.idf),
                               dtype=np.int64, count=len(model.idf))
            parts.append((rows[term_ids], np.asarray(positions, dtype=np.int64)[passage_ids], weights))
        matrix = sparse.csr_matrix(
            (np.concatenate([p[2] for p in parts]), (np.concatenate([p[0] for p in parts]),
                                                     np.concatenate([p[1] for p in parts]))),
            shape=(len(vocabulary), len(passage_terms)), dtype=np.float64)
        return cls(vocabulary, matrix, k1=k1, b=b, languages=frozenset(members))

    @classmethod
    def from_model(cls, model: rank_bm25.BM25Okapi) -> BM25Index:
        """Return an index whose `scores` equal `model.get_scores` (to rounding), from its fitted statistics."""
        term_ids, passage_ids, weights = _weight_entries(model)
        vocabulary = {(_CORPUS, term): term_id for term_id, term in enumerate(model.idf)}
        matrix = sparse.csr_matrix(
            (weights, (term_ids, passage_ids)), shape=(len(vocabulary), model.corpus_size), dtype=np.float64
        )
        return cls(vocabulary, matrix, k1=model.k1, b=model.b)

    def __len__(self) -> int:
        return self._weights.shape[1]

    @property
    def vocabulary_size(self) -> int:
        return self._weights.shape[0]

    def scores(self, query_terms: Sequence[str] | Mapping[str, Sequence[str]]) -> np.ndarray:
        """Return the BM25 score of every passage (float64, corpus order) for `query_terms`.

        `query_terms` is a list of terms, or a mapping of language group -> terms (as
        `analysis.query_terms` gives): with per-language statistics each language's terms are matched in
        its passages only (a plain list is matched in every language); with corpus statistics the
        languages' terms are pooled, each distinct term once. A term repeated in a list counts as often as
        it appears, as in `BM25Okapi.get_scores`; terms not in the corpus add nothing.
        """
        counts = Counter(self._keys(query_terms))
        if not counts:
            return np.zeros(len(self), dtype=np.float64)
        term_ids = np.fromiter((self._vocabulary[key] for key in counts), dtype=np.int64, count=len(counts))
        repeats = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        return np.asarray(self._weights[term_ids].T @ repeats, dtype=np.float64).ravel()

    def search(self, query_terms: Sequence[str] | Mapping[str, Sequence[str]], k: int) -> list[Scored]:
        """Return up to `k` passages with a positive score, best first; equal scores in corpus order.

        Raises ValueError when `k` < 1. Empty `query_terms` give ``[]``.
        """
        if k < 1:
            raise ValueError(f"k={k} is less than 1; ask for at least one passage (k >= 1)")
        if not query_terms:
            return []
        return top_k(self.scores(query_terms), k)

    def _keys(self, query_terms: Sequence[str] | Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
        if isinstance(query_terms, Mapping):
            if self.statistics == "corpus":
                pooled = dict.fromkeys(term for terms in query_terms.values() for term in terms)
                keys = [(_CORPUS, term) for term in pooled]
            else:
                keys = [(language, term) for language, terms in query_terms.items() for term in terms]
        else:
            keys = [(language, term) for language in sorted(self.languages) for term in query_terms]
        return [key for key in keys if key in self._vocabulary]


def _weight_entries(model: rank_bm25.BM25Okapi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term ids in `model.idf` order, passage ids, weights) of every term a passage holds."""
    term_index = {term: term_id for term_id, term in enumerate(model.idf)}
    rows: list[int] = []
    counts: list[int] = []
    for frequencies in model.doc_freqs:
        rows.extend(map(term_index.__getitem__, frequencies))
        counts.extend(frequencies.values())
    term_ids = np.asarray(rows, dtype=np.int64)
    passage_ids = np.repeat(
        np.arange(model.corpus_size, dtype=np.int64), [len(frequencies) for frequencies in model.doc_freqs]
    )
    tf = np.asarray(counts, dtype=np.float64)
    idf = np.fromiter(model.idf.values(), dtype=np.float64, count=len(term_index))
    # Same expression, same operation order as BM25Okapi.get_scores.
    passage_length = np.asarray(model.doc_len, dtype=np.float64)[passage_ids]
    length_norm = model.k1 * (1 - model.b + model.b * passage_length / model.avgdl) if model.avgdl else 1.0
    weights = idf[term_ids] * (tf * (model.k1 + 1) / (tf + length_norm))
    return term_ids, passage_ids, weights


def top_k(scores: np.ndarray, k: int) -> list[Scored]:
    """Return the `k` best positive `scores` as `Scored`, highest first, ties by lower index.

    >>> top_k(np.array([0.5, 2.0, 0.0, 2.0]), 2)
    [Scored(index=1, score=2.0), Scored(index=3, score=2.0)]
    """
    if k < 1:
        raise ValueError(f"k={k} is less than 1; ask for at least one passage (k >= 1)")
    candidates = np.flatnonzero(scores > 0)
    if candidates.size > k:
        # argpartition picks an arbitrary k among equal scores at the cut: keep every tie at the
        # k-th score, then a stable sort over ascending indices breaks ties by index.
        values = scores[candidates]
        kth_best = values[np.argpartition(-values, k - 1)[k - 1]]
        candidates = candidates[values >= kth_best]
    order = np.argsort(-scores[candidates], kind="stable")[:k]
    return [Scored(int(index), float(scores[index])) for index in candidates[order]]
