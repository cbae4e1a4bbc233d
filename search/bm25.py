"""BM25 over analysed passages: rank_bm25's statistics, Lucene's idf, and a sparse matrix for speed.

`rank_bm25.BM25Okapi` computes the corpus statistics; `LuceneBM25Okapi` swaps its idf for Lucene's,
which is positive for every term; `BM25Index` turns the fitted statistics into a term -> passage
weight matrix once, so a query costs one sparse row slice and a sum instead of a Python loop over
every passage per query term.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import rank_bm25
from scipy import sparse

from search.types import Scored

# Chosen on XQuAD (7 languages x 1190 questions, search.analysis terms): k1=0.9, b=0.6 gave the best
# mean nDCG@10, 0.953, of k1 in {0.6, 0.9, 1.2} x b in {0.5, 0.6, 0.75} (all within 0.951 to 0.953;
# Lucene's 1.2/0.75 is the 0.951). k1=2.0 or b=0.9 did worse.
DEFAULT_K1 = 0.9
DEFAULT_B = 0.6


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
    """A BM25 index over analysed passages (lists of terms), scored with `LuceneBM25Okapi`'s formula.

    Build it with `BM25Index.build`; it keeps no passage text, only the vocabulary and the weights.
    """

    def __init__(self, vocabulary: Mapping[str, int], weights: sparse.csr_matrix, k1: float, b: float) -> None:
        self._vocabulary = vocabulary
        self._weights = weights  # (terms, passages): the BM25 contribution of each term to each passage
        self.k1 = k1
        self.b = b

    @classmethod
    def build(cls, passage_terms: Sequence[Sequence[str]], k1: float = DEFAULT_K1, b: float = DEFAULT_B) -> BM25Index:
        """Return an index of `passage_terms` (one list of terms per passage, in corpus order).

        Raises ValueError when there are no passages, or when `k1` < 0 or `b` is outside [0, 1].

        >>> index = BM25Index.build([["red", "apple"], ["green", "pear"]])
        >>> index.search(["pear"], k=5)[0].index
        1
        """
        if len(passage_terms) == 0:
            raise ValueError("passage_terms is empty; BM25 needs at least one passage to index")
        if not k1 >= 0:
            raise ValueError(f"k1={k1} is negative; use k1 >= 0 (typically 0.9 to 2.0)")
        if not 0 <= b <= 1:
            raise ValueError(f"b={b} is outside [0, 1]; use 0 <= b <= 1 (typically 0.75)")
        model = LuceneBM25Okapi([list(terms) for terms in passage_terms], k1=k1, b=b)
        return cls.from_model(model)

    @classmethod
    def from_model(cls, model: rank_bm25.BM25Okapi) -> BM25Index:
        """Return an index whose `scores` equal `model.get_scores` (to rounding), from its fitted statistics."""
        vocabulary = {term: term_id for term_id, term in enumerate(model.idf)}
        rows: list[int] = []
        counts: list[int] = []
        for frequencies in model.doc_freqs:
            rows.extend(map(vocabulary.__getitem__, frequencies))
            counts.extend(frequencies.values())
        term_ids = np.asarray(rows, dtype=np.int64)
        passage_ids = np.repeat(
            np.arange(model.corpus_size, dtype=np.int64), [len(frequencies) for frequencies in model.doc_freqs]
        )
        tf = np.asarray(counts, dtype=np.float64)
        idf = np.fromiter(model.idf.values(), dtype=np.float64, count=len(vocabulary))
        # Same expression, same operation order as BM25Okapi.get_scores.
        passage_length = np.asarray(model.doc_len, dtype=np.float64)[passage_ids]
        length_norm = model.k1 * (1 - model.b + model.b * passage_length / model.avgdl)
        weights = idf[term_ids] * (tf * (model.k1 + 1) / (tf + length_norm))
        matrix = sparse.csr_matrix(
            (weights, (term_ids, passage_ids)), shape=(len(vocabulary), model.corpus_size), dtype=np.float64
        )
        return cls(vocabulary, matrix, k1=model.k1, b=model.b)

    def __len__(self) -> int:
        return self._weights.shape[1]

    @property
    def vocabulary_size(self) -> int:
        return self._weights.shape[0]

    def scores(self, query_terms: Sequence[str]) -> np.ndarray:
        """Return the BM25 score of every passage (float64, corpus order) for `query_terms`.

        A term repeated in the query counts as often as it appears, as in `BM25Okapi.get_scores`;
        terms not in the corpus add nothing.
        """
        counts = Counter(term for term in query_terms if term in self._vocabulary)
        if not counts:
            return np.zeros(len(self), dtype=np.float64)
        term_ids = np.fromiter((self._vocabulary[term] for term in counts), dtype=np.int64, count=len(counts))
        repeats = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        return np.asarray(self._weights[term_ids].T @ repeats, dtype=np.float64).ravel()

    def search(self, query_terms: Sequence[str], k: int) -> list[Scored]:
        """Return up to `k` passages with a positive score, best first; equal scores in corpus order.

        Raises ValueError when `k` < 1. Empty `query_terms` give ``[]``.
        """
        if k < 1:
            raise ValueError(f"k={k} is less than 1; ask for at least one passage (k >= 1)")
        if not query_terms:
            return []
        return top_k(self.scores(query_terms), k)


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
