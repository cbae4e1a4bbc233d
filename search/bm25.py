"""BM25 over analysed passages: rank_bm25's formula, Lucene's idf, and a sparse matrix for speed.

`LuceneBM25Okapi` is `rank_bm25.BM25Okapi` with Lucene's idf, which is positive for every term; it is the
reference the index is tested against. `BM25Index` computes the same statistics and the same floats into
a term -> passage weight matrix once, so a query costs one sparse row slice and a sum instead of a
Python loop over every passage per query term. It counts terms in numpy arrays (a term id and a count
per distinct term of a passage) rather than rank_bm25's dict per passage, which at 100,000 passages
held several times the memory of the finished matrix.

Statistics per language: given each passage's language, `BM25Index.build` fits one model per language
(passage count, document frequencies, average length), as if each language had its own index, the way
Lucene-based engines keep one field per language. In a mixed corpus a statistic shared by all
languages gets things backwards: an English stopword occurs only in the English passages, so across
the whole index it looks rare and weighs as much as a name. Per language, "the" is in nearly every
English passage and weighs almost nothing. A query then gives its terms per language
(`search.analysis.query_terms`), each matched only against the passages of that language.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
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

    def __init__(self, vocabulary: Mapping[str, Mapping[str, int]], weights: sparse.csr_matrix, k1: float, b: float,
                 languages: frozenset[str] = frozenset({_CORPUS})) -> None:
        self._vocabulary = vocabulary  # language -> term -> row; the one language is "" with corpus statistics
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

        The scores are `LuceneBM25Okapi`'s (one model per language), computed from term ids and counts in
        numpy arrays rather than a dict per passage: at 100,000 passages of 200 terms that is the
        difference between a peak of about the index's own size and several times it
        (benchmarks/bench_bm25_memory.py).

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
            languages = [_CORPUS] * len(passage_terms)
        elif len(languages) != len(passage_terms):
            raise ValueError(f"languages has {len(languages)} entries for {len(passage_terms)} passages; give one "
                             "language group per passage, or None for statistics over the whole corpus")
        lengths = np.fromiter(map(len, passage_terms), dtype=np.int64, count=len(passage_terms))
        vocabulary, term_counts = _count_terms(passage_terms, languages, lengths)
        # Transposed once, while still integers: terms x passages, the rows a query slices.
        term_counts = term_counts.tocsc().T
        group_of = {language: group for group, language in enumerate(vocabulary)}
        groups = np.fromiter(map(group_of.__getitem__, languages), dtype=np.int64, count=len(languages))
        idf = _idf(vocabulary, np.diff(term_counts.indptr), np.bincount(groups, minlength=len(vocabulary)))
        weights = _weights(term_counts, idf, _length_norms(lengths, groups, k1, b), k1)
        matrix = sparse.csr_matrix((weights, term_counts.indices, term_counts.indptr), shape=term_counts.shape)
        return cls(vocabulary, matrix, k1=k1, b=b, languages=frozenset(vocabulary))

    @classmethod
    def from_model(cls, model: rank_bm25.BM25Okapi) -> BM25Index:
        """Return an index whose `scores` equal `model.get_scores` (to rounding), from its fitted statistics."""
        term_ids, passage_ids, weights = _weight_entries(model)
        vocabulary = {_CORPUS: {term: term_id for term_id, term in enumerate(model.idf)}}
        matrix = sparse.csr_matrix(
            (weights, (term_ids, passage_ids)), shape=(len(model.idf), model.corpus_size), dtype=np.float64
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
        counts = Counter(self._rows(query_terms))
        if not counts:
            return np.zeros(len(self), dtype=np.float64)
        term_ids = np.fromiter(counts, dtype=np.int64, count=len(counts))
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

    def _rows(self, query_terms: Sequence[str] | Mapping[str, Sequence[str]]) -> list[int]:
        if isinstance(query_terms, Mapping):
            if self.statistics == "corpus":
                pooled = dict.fromkeys(term for terms in query_terms.values() for term in terms)
                groups: Sequence[tuple[str, Iterable[str]]] = [(_CORPUS, pooled)]
            else:
                groups = list(query_terms.items())
        else:
            groups = [(language, query_terms) for language in sorted(self.languages)]
        rows = []
        for language, terms in groups:
            vocabulary = self._vocabulary.get(language)
            if vocabulary is not None:
                rows.extend(row for row in map(vocabulary.get, terms) if row is not None)
        return rows


# Passages (when counting) or entries (when weighing) handled at a time: bounds the temporary arrays.
_PASSAGE_BLOCK = 2048
_ENTRY_BLOCK = 1 << 20


def _count_terms(passage_terms: Sequence[Sequence[str]], languages: Sequence[str],
                 lengths: np.ndarray) -> tuple[dict[str, dict[str, int]], sparse.csr_matrix]:
    """(language -> term -> term id, passages x term ids: how often the term occurs in the passage, int32)."""
    next_id = itertools.count().__next__  # one sequence of ids shared by the languages' vocabularies
    vocabulary: dict[str, defaultdict[str, int]] = {}
    for language in languages:
        if language not in vocabulary:
            vocabulary[language] = defaultdict(next_id)  # a new term gets the next id when looked up
    # Sized for every term being distinct in its passage: the pages never written are never resident,
    # and no list of blocks has to be joined (which would hold the entries twice).
    term_ids = np.empty(int(lengths.sum()), dtype=np.int32)
    term_counts = np.empty_like(term_ids)
    indptr = np.zeros(len(passage_terms) + 1, dtype=np.int64)
    for start in range(0, len(passage_terms), _PASSAGE_BLOCK):
        end = min(start + _PASSAGE_BLOCK, len(passage_terms))
        lookups = (map(vocabulary[language].__getitem__, terms)
                   for terms, language in zip(passage_terms[start:end], languages[start:end], strict=True))
        ids = np.fromiter(itertools.chain.from_iterable(lookups), dtype=np.int64,
                          count=int(lengths[start:end].sum()))
        # (passage, term id) as one sortable key: np.unique gives each pair once, with its count.
        passages = np.repeat(np.arange(start, end, dtype=np.int64), lengths[start:end])
        pairs, counts = np.unique(passages << 32 | ids, return_counts=True)
        first = indptr[start]
        term_ids[first:first + len(pairs)] = pairs & 0xFFFF_FFFF
        term_counts[first:first + len(pairs)] = counts
        indptr[start + 1:end + 1] = first + np.cumsum(np.bincount((pairs >> 32) - start, minlength=end - start))
    for terms in vocabulary.values():
        terms.default_factory = None  # from now on an unknown term is a KeyError, not a new id
    vocabulary_size = next_id()
    if vocabulary_size > np.iinfo(np.int32).max:
        raise ValueError(f"the corpus has {vocabulary_size:,} distinct terms; BM25Index holds at most 2**31 - 1")
    entries = int(indptr[-1])
    matrix = sparse.csr_matrix((term_counts[:entries], term_ids[:entries], indptr),
                               shape=(len(passage_terms), vocabulary_size))
    return vocabulary, matrix


def _idf(vocabulary: Mapping[str, Mapping[str, int]], document_frequency: np.ndarray,
         passages_per_group: np.ndarray) -> np.ndarray:
    """Each term id's `LuceneBM25Okapi` idf among the passages of its language (the groups in `vocabulary` order)."""
    passages = np.empty(len(document_frequency), dtype=np.int64)
    for group, terms in enumerate(vocabulary.values()):
        passages[np.fromiter(terms.values(), dtype=np.int64, count=len(terms))] = passages_per_group[group]
    ratio = (passages - document_frequency + 0.5) / (document_frequency + 0.5)
    # math.log, as LuceneBM25Okapi._calc_idf: np.log may differ from it in the last bit.
    return np.fromiter(map(math.log, 1.0 + ratio), dtype=np.float64, count=len(ratio))


def _length_norms(lengths: np.ndarray, groups: np.ndarray, k1: float, b: float) -> np.ndarray:
    """``k1 * (1 - b + b * length / average length)`` of each passage, the average over its language's
    passages, as `BM25Okapi.get_scores` computes it."""
    passages = np.bincount(groups)
    total_lengths = np.bincount(groups, weights=lengths)
    # rank_bm25's avgdl is a Python int over an int; a language whose passages are all empty has no terms.
    average = np.array([int(total) / int(count) if total else 1.0
                        for total, count in zip(total_lengths, passages, strict=True)])
    return k1 * (1 - b + b * lengths.astype(np.float64) / average[groups])


def _weights(term_counts: sparse.csr_matrix, idf: np.ndarray, length_norms: np.ndarray, k1: float) -> np.ndarray:
    """The BM25 weight of each entry of `term_counts` (terms x passages) as `BM25Okapi.get_scores`
    computes it, the same operations in the same order, so the same floats."""
    weights = np.empty(term_counts.nnz, dtype=np.float64)
    indptr = term_counts.indptr
    # Blocks of whole rows, about _ENTRY_BLOCK entries each, so a row's idf is repeated over its entries.
    first_rows = np.searchsorted(indptr, np.arange(0, term_counts.nnz, _ENTRY_BLOCK), side="right") - 1
    for first_row, end_row in itertools.pairwise(np.unique(np.append(first_rows, term_counts.shape[0])).tolist()):
        begin, end = indptr[first_row], indptr[end_row]
        tf = term_counts.data[begin:end].astype(np.float64)
        row_idf = np.repeat(idf[first_row:end_row], np.diff(indptr[first_row:end_row + 1]))
        weights[begin:end] = row_idf * (tf * (k1 + 1) / (tf + length_norms[term_counts.indices[begin:end]]))
    return weights


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
