"""Comparing the stages of one search: how a reranker moved each passage, which retrievers had found
it, how much two stages' top-k lists overlap, the best passage of each document, and how far every
further reranker of the same candidates agrees with the first (shared@k, Jaccard@k, Kendall's tau;
"↑3 vs A" per passage).

Pure functions over `SearchResult` and `Hit` (no model, no HTML): the app draws these records, and the
CLI (`python -m search query`) and the exports (`search.export`) report the same numbers.

"Top-k" is what a user sees: a passage at rank 14 of the dense list is *not* in the dense top-10, so a
reranked hit found there counts as "new" against dense when k=10.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .stages import FIRST_STAGES, RERANK, RETRIEVERS, is_rerank, ordered, rerank_stage, stage
from .types import Hit, SearchResult, StageResult

MoveKind = Literal["up", "down", "same", "new"]

# How a card of a further reranker's column names the first reranker: "↑3 vs A".
RERANKER_A = stage(RERANK).letter
# Every pair of stages whose top-k overlap is reported, in this order (further rerankers are compared with
# the first by `agreement`).
STAGE_PAIRS = (("bm25", "dense"), ("bm25", "hybrid"), ("dense", "hybrid"),
               ("bm25", RERANK), ("dense", RERANK), ("hybrid", RERANK))
# A reranked hit in this top that its candidate stage had below the top-k shown is "lifted".
LIFTED_TOP = 3


@dataclass(frozen=True)
class Movement:
    """Where a reranked hit stood in one first stage: `before` is its rank there (None when that stage
    did not return it), `after` its reranked rank; `kind` is "new" when it was not in that stage's
    top-k. `text` says it in a few words: "↑6 from BM25 #8"."""

    kind: MoveKind
    against: str
    before: int | None
    after: int
    text: str


class Overlap(NamedTuple):
    """How many passages two stages share in their top-k, and the Jaccard index of the two sets."""

    shared: int
    jaccard: float


@dataclass(frozen=True)
class StageOverlap:
    """The overlap of two stages' top-k lists (`first`, `second` in stage order)."""

    first: str
    second: str
    k: int
    shared: int
    jaccard: float


@dataclass(frozen=True)
class RerankedHit:
    """What the reranker did with one passage: its movement against each first stage that ran (the
    stage that fed the reranker first), the retrievers that had it in their top-k, and whether it was
    lifted into the top `LIFTED_TOP` from below the top-k of the candidate stage."""

    passage_id: str
    rank: int
    movements: tuple[Movement, ...]
    found_by: tuple[str, ...]
    lifted: bool
    versus_a: Movement | None = None  # a hit of a further reranker (rerank-b, …): how it moved against A


@dataclass(frozen=True)
class Agreement:
    """How far two rerankings of the same candidates agree: shared@k and Jaccard@k of their top-k lists,
    Kendall's tau over every candidate both ranked (`candidates`; None below 2), `first` and `second`
    naming the stages (rerank and a further one: rerank-b, rerank-c…)."""

    first: str
    second: str
    k: int
    shared: int
    jaccard: float
    kendall_tau: float | None
    candidates: int


@dataclass(frozen=True)
class Comparison:
    """Everything `compare` reports for one search at one k: the overlaps, what each reranker that ran did
    with each of its top-k hits (`reranked`: stage -> hits, in stage order) and how every further reranker
    agrees with the first (`agreements`)."""

    k: int
    overlaps: tuple[StageOverlap, ...]
    reranked: dict[str, tuple[RerankedHit, ...]]
    agreements: tuple[Agreement, ...] = ()


def movement(hit: Hit, first_stage: str, k: int) -> Movement:
    """Return how `hit` (a reranked hit) moved against `first_stage` (bm25, dense or hybrid).

    A rank deeper than `k`, or none, counts as "new": the passage was not in that stage's top-k.
    Raises ValueError for an unknown stage or k < 1.

    >>> from search.types import Language
    >>> movement(Hit("p", "d", 2, 1.0, Language("en", "en", 1.0), "", ranks={"bm25": 8}), "bm25", 10).text
    '↑6 from BM25 #8'
    """
    if first_stage not in FIRST_STAGES:
        raise ValueError(f"first_stage={first_stage!r} is not a first stage; use one of {', '.join(FIRST_STAGES)}")
    _check_k(k)
    name = stage(first_stage).short
    before, after = hit.ranks.get(first_stage), hit.rank
    if before is None or before > k:
        was = f" (was #{before})" if before is not None else ""
        return Movement("new", first_stage, before, after, f"new: not in {name} top-{k}{was}")
    if before > after:
        return Movement("up", first_stage, before, after, f"↑{before - after} from {name} #{before}")
    if before < after:
        return Movement("down", first_stage, before, after, f"↓{after - before} from {name} #{before}")
    return Movement("same", first_stage, before, after, f"= {name} #{before}")


def movements(hit: Hit, result: SearchResult, k: int) -> tuple[Movement, ...]:
    """Return `hit`'s movement against every first stage of `result` that ran, the stage that fed the
    reranker (`result.candidates_from`) first. Raises ValueError for k < 1."""
    order = [result.candidates_from, *(stage for stage in FIRST_STAGES if stage != result.candidates_from)]
    ran = stages_that_ran(result)
    return tuple(movement(hit, stage, k) for stage in order if stage in ran)


def found_by(hit: Hit, k: int, stage: str = RERANK) -> tuple[str, ...]:
    """Return the retrievers ("bm25", "dense") that had `hit` in their top-k, in that order.

    `stage` is the stage `hit` belongs to; its own rank is `hit.rank`, the others come from `hit.ranks`.
    """
    found = []
    for retriever in RETRIEVERS:
        rank = hit.rank if retriever == stage else hit.ranks.get(retriever)
        if rank is not None and rank <= k:
            found.append(retriever)
    return tuple(found)


def is_lifted(hit: Hit, candidates_from: str, k: int) -> bool:
    """Whether the reranker lifted `hit` into its top `LIFTED_TOP` (3) from deeper than k in the stage
    that fed it (`candidates_from`), i.e. from outside the list the user saw next to it."""
    before = hit.ranks.get(candidates_from)
    return hit.rank <= LIFTED_TOP and before is not None and before > k


def overlap(a: StageResult, b: StageResult, k: int) -> Overlap:
    """Return shared@k and Jaccard@k on the passage ids of the two stages' top-k hits (0.0 for two empty lists).

    >>> from search.types import Language
    >>> hits = lambda *ids: tuple(Hit(i, i, r, 0.0, Language("en", "en", 1.0), "") for r, i in enumerate(ids, 1))
    >>> overlap(StageResult("bm25", hits("a", "b", "c"), 0.0), StageResult("dense", hits("b", "c", "d"), 0.0), 3)
    Overlap(shared=2, jaccard=0.5)
    """
    ids_a = {hit.passage_id for hit in a.hits[:k]}
    ids_b = {hit.passage_id for hit in b.hits[:k]}
    union = ids_a | ids_b
    shared = len(ids_a & ids_b)
    return Overlap(shared, shared / len(union) if union else 0.0)


def overlaps(result: SearchResult, k: int) -> tuple[StageOverlap, ...]:
    """Return the top-k overlap of every pair in `STAGE_PAIRS` whose two stages both ran without error.
    Raises ValueError for k < 1."""
    _check_k(k)
    ran = stages_that_ran(result)
    return tuple(StageOverlap(a, b, k, *overlap(result.stages[a], result.stages[b], k))
                 for a, b in STAGE_PAIRS if a in ran and b in ran)


def stages_that_ran(result: SearchResult) -> tuple[str, ...]:
    """Return the stages of `result` that ran without an error, in stage order (rerankers by position)."""
    return tuple(name for name in ordered(result.stages) if not result.stages[name].error)


def kendall_tau(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Return Kendall's tau between two rankings (ids, best first) over the ids both contain:
    (concordant - discordant pairs) / all pairs, from 1.0 (same order) to -1.0 (reversed). Rankings have
    no ties, so this is tau-a and tau-b alike. None when fewer than 2 ids are shared. Raises ValueError
    when an id repeats within a ranking.

    >>> kendall_tau(["a", "b", "c", "d"], ["a", "b", "c", "d"]), kendall_tau(["a", "b", "c"], ["c", "b", "a"])
    (1.0, -1.0)
    >>> round(kendall_tau(["a", "b", "c", "d"], ["b", "a", "c", "d"]), 4)  # 1 of 6 pairs swapped: (5 - 1) / 6
    0.6667
    >>> kendall_tau(["a", "b", "x"], ["b", "a", "y"]), kendall_tau(["a"], ["a"])  # only a and b are shared
    (-1.0, None)
    """
    for name, ranking in (("first", first), ("second", second)):
        if len(set(ranking)) != len(ranking):
            raise ValueError(f"the {name} ranking repeats an id; pass each id once, best first")
    position = {item: rank for rank, item in enumerate(second)}
    shared = [position[item] for item in first if item in position]  # second's ranks, in first's order
    n = len(shared)
    if n < 2:
        return None
    balance = sum(1 if shared[i] < shared[j] else -1 for i in range(n) for j in range(i + 1, n))
    return balance / (n * (n - 1) / 2)


def versus(hit: Hit, against: str = RERANK, name: str = RERANKER_A) -> Movement | None:
    """Return how `hit` (a hit of a further reranker) moved against its rank in the stage `against`
    (the first reranker), over the whole candidate list, not only the top k: "↑3 vs A", "↓1 vs A",
    "= A". None when `against` did not rank it (it did not run, or failed).

    >>> from search.types import Language
    >>> versus(Hit("p", "d", 2, 1.0, Language("en", "en", 1.0), "", ranks={"rerank": 5})).text
    '↑3 vs A'
    """
    before, after = hit.ranks.get(against), hit.rank
    if before is None:
        return None
    if before > after:
        return Movement("up", against, before, after, f"↑{before - after} vs {name}")
    if before < after:
        return Movement("down", against, before, after, f"↓{after - before} vs {name}")
    return Movement("same", against, before, after, f"= {name}")


def agreement(result: SearchResult, k: int, first: str = RERANK, second: str = rerank_stage(1)) -> Agreement | None:
    """Return how the stages `first` and `second` (two rerankers) agree: shared@k and Jaccard@k of
    their top k, and Kendall's tau over every candidate both ranked. None unless both ran without an
    error. Raises ValueError for k < 1."""
    _check_k(k)
    ran = stages_that_ran(result)
    if first not in ran or second not in ran:
        return None
    a, b = result.stages[first], result.stages[second]
    ids_a, ids_b = [hit.passage_id for hit in a.hits], [hit.passage_id for hit in b.hits]
    shared, jaccard = overlap(a, b, k)
    return Agreement(first, second, k, shared, jaccard, kendall_tau(ids_a, ids_b), len(set(ids_a) & set(ids_b)))


def best_per_document(hits: Iterable[Hit]) -> tuple[Hit, ...]:
    """Return the first (best-ranked) hit of each document, in rank order."""
    seen: set[str] = set()
    best = []
    for hit in hits:
        if hit.doc_id not in seen:
            seen.add(hit.doc_id)
            best.append(hit)
    return tuple(best)


def reranked_hit(hit: Hit, result: SearchResult, k: int, stage: str = RERANK) -> RerankedHit:
    """Return what the reranker of `stage` did with `hit`, one of its reranked hits; for a hit of a further
    reranker (rerank-b, …) also how it moved against the first. Raises ValueError for k < 1."""
    return RerankedHit(hit.passage_id, hit.rank, movements(hit, result, k), found_by(hit, k),
                       is_lifted(hit, result.candidates_from, k), versus(hit) if stage != RERANK else None)


def agreements(result: SearchResult, k: int) -> tuple[Agreement, ...]:
    """Return how each further reranker that ran (rerank-b, rerank-c, …) agrees with the first (rerank).
    Raises ValueError for k < 1."""
    found = (agreement(result, k, RERANK, name) for name in stages_that_ran(result)
             if is_rerank(name) and name != RERANK)
    return tuple(one for one in found if one is not None)


def compare(result: SearchResult, k: int) -> Comparison:
    """Return the overlaps of every pair of stages that ran and, for each reranked hit in the top k of each
    reranker that ran, what it did with it; with further rerankers also how each agrees with the first.
    Raises ValueError for k < 1."""
    pairs = overlaps(result, k)
    reranked = {name: tuple(reranked_hit(hit, result, k, name) for hit in result.stages[name].hits[:k])
                for name in stages_that_ran(result) if is_rerank(name)}
    return Comparison(k, pairs, reranked, agreements(result, k))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
