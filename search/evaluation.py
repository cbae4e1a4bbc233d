"""Evaluation runs: every judged query through an index's stages, with nDCG@10, MRR@10, Recall@10 and
Recall@100 per stage (`evaluate`), how long a run will take here (`estimate_evaluation`), and quality and
time against rerank depth (`depth_tradeoff`).

Every reranker of the index is a stage of its own (rerank, rerank-b, …; `search.stages`), measured on the
same candidates, and each further one is compared with the first (`MeanAgreement`). Datasets come from
`search.datasets`, metrics from `search.metrics`, judgment files from `search.judgments`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

from . import estimates
from .compare import Agreement, agreement
from .inference import RerankCancelled
from .judgments import Judgments, Level, Query, match_judgments
from .metrics import compute_metrics, landed_ranks, metric_names, ranked_ids
from .stages import FIRST_STAGES, RERANK, check_stages, is_rerank, ordered
from .types import SearchResult

if TYPE_CHECKING:
    from .inference import Loaded, MeasuredReranker
    from .pipeline import Index

RETRIEVAL_DEPTH = 100  # deep enough for Recall@100
DEPTHS = (10, 20, 50, 100)  # rerank depths `depth_tradeoff` compares by default
ESTIMATE_PAIRS = 16  # pairs reranked to measure pairs/s: one batch, about a second on a CPU


@dataclass(frozen=True)
class EvalReport:
    """Metrics per stage, plus what they were computed on.

    `per_query`: stage -> query id -> metric -> value. `landed`: stage -> query id -> the 1-based ranks,
    in that stage's ranking at `level`, of the ids judged relevant (grade > 0); () when none was retrieved.
    `query_texts`: query id -> text, for the evaluated queries in order. `languages` counts the passages'
    detected languages, `query_languages` the evaluated queries' (they differ in a cross-lingual run).
    """

    passages: int
    queries: int
    languages: dict[str, int]
    models: dict[str, str]
    stages: dict[str, dict[str, float]]
    timings_s: dict[str, float]
    level: Level
    judged_ids: int  # distinct judged ids in the qrels of the evaluated queries
    matched_ids: int  # ... of which the corpus has
    per_query: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    cancelled: bool = False
    landed: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    query_texts: dict[str, str] = field(default_factory=dict)
    query_languages: dict[str, int] = field(default_factory=dict)
    # Each further reranker (rerank-b, …) -> its mean agreement with the first (see `MeanAgreement`).
    agreements: dict[str, MeanAgreement] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The CLI's `--json` object (per-query figures left out)."""
        return {
            "passages": self.passages, "queries": self.queries, "languages": self.languages,
            "query_languages": self.query_languages,
            "models": self.models, "stages": self.stages, "timings_s": self.timings_s, "level": self.level,
            "judged_ids": self.judged_ids, "matched_ids": self.matched_ids, "notes": list(self.notes),
            "cancelled": self.cancelled,
            **({"agreements": {stage: asdict(mean) for stage, mean in self.agreements.items()}}
               if self.agreements else {}),
        }


@dataclass(frozen=True)
class MeanAgreement:
    """How far a further reranker agreed with the first (rerank), averaged over `queries` queries: shared@k
    and Jaccard@k of their top k, and Kendall's tau over the candidates (over the queries that had one)."""

    k: int
    queries: int
    shared: float
    jaccard: float
    kendall_tau: float | None


@dataclass(frozen=True)
class Estimate:
    """How long an evaluation should take here: in all, per query in the first stages, and the speed each
    reranker's time was estimated at: `pairs_per_second` for one that scores every pair (stage -> pairs/s;
    None where nothing was measured), `passages_per_second` for one that encodes each passage once and keeps
    it (late interaction: stage -> its encoder's passages/s), with `passages_to_encode` (stage -> how many
    passages the run should encode, at most the corpus)."""

    seconds: float
    queries: int
    first_stage_seconds: float
    pairs_per_second: dict[str, float | None] = field(default_factory=dict)
    passages_per_second: dict[str, float] = field(default_factory=dict)
    passages_to_encode: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DepthPoint:
    """nDCG@10 of a rerank stage (rerank, rerank-b, …) at one rerank depth, and the seconds a query costs
    at that depth."""

    depth: int
    ndcg_at_10: float
    seconds_per_query: float
    stage: str = "rerank"


def stage_rankings(result: SearchResult, level: Level) -> dict[str, list[str]]:
    """Ranked ids per stage of one search. A rerank stage continues past its depth with the rest of the
    first stage's candidates, in first-stage order, as a real two-stage system would."""
    rankings = {}
    for name, stage in result.stages.items():
        if stage.error is not None:
            continue
        hits = list(stage.hits)
        if is_rerank(name):
            reranked = {hit.passage_id for hit in stage.hits}
            hits += [hit for hit in result.stages[result.candidates_from].hits if hit.passage_id not in reranked]
        rankings[name] = ranked_ids(hits, level)
    return rankings


def judgment_level(index: Index, qrels: Mapping[str, Mapping[str, int]]) -> tuple[Level, int, int]:
    """Whether the qrels name documents or passages (whichever matches more), with judged and matched
    counts; see `judgments.match_judgments`."""
    match = match_judgments(Judgments((), qrels), index.passages)
    return match.level, match.judged, match.matched


# -- runs ---------------------------------------------------------------------------------------------

def evaluate(index: Index, judgments: Judgments, *, stages: Sequence[str] | None = None, k: int = 10,
             rerank_depth: int = 20, candidates_from: str = "hybrid", max_queries: int | None = None,
             progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> EvalReport:
    """Run every judged query through the stages (default: every stage of the index, its rerankers
    included) and compute the metrics of each stage.

    Each rerank stage (rerank, rerank-b, …) reranks the same candidates with its own reranker, and each
    further one's agreement with the first is averaged over the queries (`EvalReport.agreements`).
    `should_stop` is polled between queries and by the rerankers between batches; a stopped run reports
    the queries finished so far (`cancelled` set; no metrics when none finished). Raises ValueError for
    an unknown stage, a rerank stage the index has no reranker for, a rerank stage with rerank_depth 0,
    a max_queries below 1, or when no query has judgments.
    """
    stages = ordered(stages if stages is not None else (*FIRST_STAGES, *index.rerank_stages))
    check_stages(stages, len(index.rerank_stages))
    reranks = [name for name in stages if is_rerank(name)]
    for name in reranks:
        if rerank_depth <= 0:
            raise ValueError(f"the {name} stage needs rerank_depth >= 1 (it reranks that many first-stage "
                             f"candidates); raise the rerank depth or leave the {name} stage out")
    queries = _judged_queries(judgments, max_queries)
    level, judged_ids, matched_ids = judgment_level(index, {q.query_id: judgments.qrels[q.query_id] for q in queries})
    depth = max(RETRIEVAL_DEPTH, k, rerank_depth)
    rankings: dict[str, dict[str, list[str]]] = {stage: {} for stage in stages}
    seconds: dict[str, list[float]] = {stage: [] for stage in stages}
    models: dict[str, str] = {}
    notes: dict[str, list[str]] = {}  # note -> the stages it concerns
    query_texts: dict[str, str] = {}
    query_languages: Counter[str] = Counter()
    agreements: dict[str, list[Agreement]] = {name: [] for name in reranks if name != RERANK}
    pairs = dict.fromkeys(reranks, 0)
    rerank_seconds = dict.fromkeys(reranks, 0.0)
    started = time.perf_counter()
    cancelled = False
    for done, query in enumerate(queries, start=1):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        result = index.retrieve(query.text, k=depth, rerank_depth=rerank_depth if reranks else 0,
                                candidates_from=candidates_from, stages=stages)
        try:
            for name in reranks:
                result = index.rerank(result, should_stop=should_stop, stage=name)
        except RerankCancelled:
            cancelled = True
            break
        query_texts[query.query_id] = query.text
        query_languages[result.query_language.group] += 1
        for name, found in agreements.items():
            one = agreement(result, k, RERANK, name)
            if one is not None:
                found.append(one)
        for name, ranking in stage_rankings(result, level).items():
            if name in rankings:
                rankings[name][query.query_id] = ranking
        for name in stages:
            stage = result.stages.get(name)
            if stage is None:
                continue
            seconds[name].append(stage.seconds)
            models[name] = stage.model
            for text in (stage.note, stage.error):
                if text and name not in notes.setdefault(text, []):
                    notes[text].append(name)
            if name in pairs:
                pairs[name] += len(stage.hits)
                rerank_seconds[name] += stage.seconds
        if progress is not None:
            progress(done, len(queries))
    names = metric_names(k)
    metrics: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    landed: dict[str, dict[str, tuple[int, ...]]] = {}
    for name in stages:
        if not query_texts or (not rankings[name] and any(name in concerned for concerned in notes.values())):
            continue  # nothing finished, or the stage could not run (e.g. no reranker): its note says why
        metrics[name], per_query[name] = compute_metrics(judgments.qrels, rankings[name], names)
        landed[name] = {query_id: landed_ranks(ranking, judgments.qrels[query_id])
                        for query_id, ranking in rankings[name].items()}
    timings = {f"{name}_mean_query": sum(values) / len(values) for name, values in seconds.items() if values}
    timings.update({f"build_{step}": value for step, value in index.report.timings_s.items()})
    timings["queries_total"] = time.perf_counter() - started
    for name in reranks:
        if rerank_seconds[name] > 0:
            # Pairs found in the score cache take no time: the reranker's measured speed is the honest figure.
            timings[f"{name}_pairs_per_second"] = (_measured_pairs_per_second(index, name)
                                                   or pairs[name] / rerank_seconds[name])
    return EvalReport(
        passages=len(index), queries=len(query_texts), languages=dict(index.report.languages),
        models={"dense": index.encoder.model.label, **models}, stages=metrics, timings_s=timings, level=level,
        judged_ids=judged_ids, matched_ids=matched_ids, per_query=per_query, cancelled=cancelled,
        notes=tuple(f"{', '.join(concerned)}: {text}" for text, concerned in notes.items()),
        landed=landed, query_texts=query_texts, query_languages=dict(query_languages.most_common()),
        agreements={name: mean for name, found in agreements.items() if (mean := _mean_agreement(found, k))},
    )


def _mean_agreement(agreements: Sequence[Agreement], k: int) -> MeanAgreement | None:
    if not agreements:
        return None
    taus = [one.kendall_tau for one in agreements if one.kendall_tau is not None]
    return MeanAgreement(k, len(agreements), sum(one.shared for one in agreements) / len(agreements),
                         sum(one.jaccard for one in agreements) / len(agreements),
                         sum(taus) / len(taus) if taus else None)


def estimate_evaluation(index: Index, n_queries: int, *, stages: Sequence[str], rerank_depth: int,
                        candidates_from: str, sample_queries: Sequence[str]) -> Estimate:
    """Estimate how long `evaluate` will take for `n_queries` queries on this machine.

    Times up to two of `sample_queries` through the first stages `stages` needs (the faster run counts,
    so a first call's warm-up is left out), then adds each reranker's time for queries like the samples:
    what each sample would make it do now (`Index.rerank_work`: its pairs not in the score cache, none when
    the same queries ran before), counted by `estimates.rerank_seconds`, as the rerank estimate beside the
    depth slider counts one query:

    - a reranker that scores every pair (a cross-encoder): n_queries x rerank_depth pairs at its measured
      pairs/s (`MeasuredReranker.throughput`), measured on a few real candidates (ESTIMATE_PAIRS, after a
      one-pair warm-up) when it has not reranked yet;
    - a reranker that encodes each passage once and keeps it (late interaction, `Reranker.passage_caching`):
      one encoding per query and one per passage it has not encoded yet (at most the corpus' passages it has
      not encoded), at its encoder's speed measured here (`search.estimates`: the build's own embedding, its
      reranks, or a few passages measured now). Its speed per pair would count every query's candidates as
      new although most passages recur, and overestimate a run several times.

    A reranker with nothing to rerank (depth 0, no candidate, every pair cached) costs nothing and measures
    nothing. Loads the rerankers if they are not loaded yet (that time is not counted). No stage gives an
    estimate of 0 s. Raises ValueError for an unknown stage, a negative `n_queries`, an out-of-range depth or
    no non-empty sample query.

    >>> estimate = estimate_evaluation(index, 300, stages=["bm25", "rerank"], rerank_depth=20,
    ...                                candidates_from="hybrid", sample_queries=["what is tea"])  # doctest: +SKIP
    >>> round(estimate.seconds)  # doctest: +SKIP
    42
    """
    check_stages(stages, len(index.rerank_stages))
    if n_queries < 0:
        raise ValueError(f"n_queries={n_queries} is negative; pass the number of queries to evaluate")
    samples = [text for text in sample_queries if text.strip()][:2]
    if not samples:
        raise ValueError("no sample query to time; pass the text of one or two of the judged queries")
    reranks = [name for name in ordered(stages) if is_rerank(name)] if rerank_depth > 0 else []
    if not reranks and not [stage for stage in stages if not is_rerank(stage)]:
        return Estimate(0.0, n_queries, 0.0)
    depth = max(RETRIEVAL_DEPTH, rerank_depth)
    results, timings = [], []
    for text in samples:
        started = time.perf_counter()
        results.append(index.retrieve(text, k=depth, rerank_depth=rerank_depth if reranks else 0,
                                      candidates_from=candidates_from, stages=stages))
        timings.append(time.perf_counter() - started)
    first_stage_seconds = min(timings)
    seconds = n_queries * first_stage_seconds
    pair_speeds: dict[str, float | None] = {}
    passage_speeds: dict[str, float] = {}
    to_encode: dict[str, int] = {}
    for name in reranks:
        try:
            loaded = index.reranker(name)
        except ValueError:
            pair_speeds[name] = None  # evaluate() reports why, as the rerank stage's note
            continue
        # What the samples would make it do (before measuring, which scores some of them).
        work = [index.rerank_work(result, rerank_depth, loaded.model) for result in results]
        if not any(item.pairs for item in work):
            continue  # nothing to rerank: nothing to measure or to count
        caching = loaded.model.passage_caching()
        unencoded = None
        if caching is not None:
            texts = index.rerank_texts()
            speed = estimates.ensure_measured(caching.encoder, texts).pairs_per_second
            unencoded = caching.unencoded(texts)
            if speed:
                passage_speeds[name] = speed
                to_encode[name] = estimates.passages_to_encode(work, n_queries, unencoded)
        else:
            pair_speeds[name] = speed = _measure_pairs_per_second(index, results, name)
        if speed:
            # A cross-encoder's pairs at the speed just measured (a probe answered from the score cache leaves
            # the reranker's own meter empty).
            seconds += estimates.rerank_seconds(loaded.model, work, queries=n_queries, unencoded=unencoded,
                                                pairs_per_second=None if caching is not None else speed) or 0.0
    return Estimate(seconds, n_queries, first_stage_seconds, pair_speeds, passage_speeds, to_encode)


def _measure_pairs_per_second(index: Index, results: Sequence[SearchResult], stage: str) -> float | None:
    """The reranker's (of `stage`) measured pairs/s when it has reranked before, else pairs/s of a real
    rerank of up to ESTIMATE_PAIRS candidates after a one-pair warm-up; None when the reranker can't be
    loaded or no sample query has a candidate."""
    result = max(results, key=lambda r: len(r.stages[r.candidates_from].hits))
    if not result.stages[result.candidates_from].hits:
        return None
    try:
        loaded = index.reranker(stage)
    except ValueError:
        return None  # evaluate() reports why, as the rerank stage's note
    if loaded.model.throughput().batches >= 2:
        return loaded.model.throughput().pairs_per_second  # measured past its warm-up batch already
    # The first forward pass pays one-off costs; the query itself is no corpus passage, so a reranker
    # that caches passage encodings gains nothing for the measured pairs.
    loaded.model.score(result.query, [result.query])
    probe = replace(result, rerank_depth=min(result.rerank_depth, ESTIMATE_PAIRS))
    return index.rerank(probe, loaded, stage=stage).stages[stage].pairs_per_second


def _measured_pairs_per_second(index: Index, stage: str = RERANK) -> float | None:
    """The loaded reranker's (of `stage`) measured speed (cached pairs excluded), or None without one."""
    loaded = index.loaded_reranker(stage)
    return loaded.model.throughput().pairs_per_second if loaded is not None else None


def depth_tradeoff(index: Index, judgments: Judgments, *, depths: Sequence[int] = DEPTHS,
                   candidates_from: str = "hybrid", max_queries: int | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   stages: Sequence[str] | None = None) -> tuple[DepthPoint, ...]:
    """nDCG@10 of each rerank stage of `stages` (default: every reranker of the index) and seconds per
    query at each rerank depth, deepest work done once.

    Each judged query is retrieved once and its top max(depths) candidates are reranked once: a
    reranker scores each (query, passage) pair on its own, so the ranking at depth d is the top d
    candidates ordered by their rerank scores, then the rest of the first-stage ranking, exactly what
    `evaluate(..., rerank_depth=d)` ranks. (Above RETRIEVAL_DEPTH the hybrid candidates are fused from
    deeper lists, which can reorder their tail.) Depths beyond the corpus are clipped and repeats
    dropped; points come stage by stage (in `stages` order), each in increasing depth.

    `seconds_per_query` is derived, not timed per depth: the mean wall time of retrieving the candidates
    plus the mean number of pairs reranked at that depth times the reranker's measured seconds per pair
    (its `throughput()`, so pairs found in the score cache do not make a depth look cheap).
    `should_stop` is polled between queries and by the reranker between batches; the points then cover
    the finished queries (none: ()). Raises ValueError for a depth below 1, a bad `candidates_from`, a
    stage that is not one of the index's rerank stages, no judged query, or a reranker that can't be loaded.
    """
    if candidates_from not in FIRST_STAGES:
        raise ValueError(f"candidates_from={candidates_from!r} is not a first stage; use one of "
                         f"{', '.join(FIRST_STAGES)}")
    if not depths or any(int(depth) < 1 for depth in depths):
        raise ValueError(f"depths={tuple(depths)!r}: give one or more rerank depths, each at least 1")
    stages = list(dict.fromkeys(stages if stages is not None else index.rerank_stages))
    if not stages or any(not is_rerank(stage) for stage in stages):
        raise ValueError(f"stages={tuple(stages)!r}: give one or more of {', '.join(index.rerank_stages)}")
    check_stages(stages, len(index.rerank_stages))
    clipped = sorted({min(int(depth), len(index)) for depth in depths})
    deepest = clipped[-1]
    queries = _judged_queries(judgments, max_queries)
    level = judgment_level(index, {q.query_id: judgments.qrels[q.query_id] for q in queries})[0]
    loaded_by_stage: dict[str, Loaded[MeasuredReranker]] = {stage: index.reranker(stage) for stage in stages}
    rankings = {stage: {depth: {} for depth in clipped} for stage in stages}
    pairs_at = {stage: dict.fromkeys(clipped, 0) for stage in stages}
    rerank_seconds = dict.fromkeys(stages, 0.0)
    pairs = dict.fromkeys(stages, 0)
    retrieve_seconds = 0.0
    finished = 0
    for done, query in enumerate(queries, start=1):
        if should_stop is not None and should_stop():
            break
        started = time.perf_counter()
        result = index.retrieve(query.text, k=max(RETRIEVAL_DEPTH, deepest), rerank_depth=deepest,
                                candidates_from=candidates_from, stages=(candidates_from,))
        query_seconds = time.perf_counter() - started
        try:
            for stage in stages:
                result = index.rerank(result, loaded_by_stage[stage], should_stop=should_stop, stage=stage)
        except RerankCancelled:
            break
        retrieve_seconds += query_seconds
        finished += 1
        for stage in stages:
            rerank = result.stages[stage]
            rerank_seconds[stage] += rerank.seconds
            pairs[stage] += len(rerank.hits)
            for depth in clipped:
                at_depth = reranked_at_depth(result, depth, stage)
                rankings[stage][depth][query.query_id] = stage_rankings(at_depth, level)[stage]
                pairs_at[stage][depth] += len(at_depth.stages[stage].hits)
        if progress is not None:
            progress(done, len(queries))
    if finished == 0:
        return ()
    points = []
    for stage in stages:
        measured = loaded_by_stage[stage].model.throughput().seconds_per_pair
        seconds_per_pair = measured or (rerank_seconds[stage] / pairs[stage] if pairs[stage] else 0.0)
        for depth in clipped:
            means, _ = compute_metrics(judgments.qrels, rankings[stage][depth], ("ndcg@10",))
            seconds = (retrieve_seconds + pairs_at[stage][depth] * seconds_per_pair) / finished
            points.append(DepthPoint(depth, means["ndcg@10"], seconds, stage))
    return tuple(points)


def reranked_at_depth(result: SearchResult, depth: int, stage: str = RERANK) -> SearchResult:
    """`result` (with the rerank stage `stage`) as if only its top `depth` candidates had been reranked.

    Valid because a pair's score does not depend on the other candidates; ties keep candidate order,
    as in `Index.rerank`.
    """
    candidates = {hit.passage_id for hit in result.stages[result.candidates_from].hits[:depth]}
    rerank = result.stages[stage]
    hits = tuple(replace(hit, rank=rank) for rank, hit in
                 enumerate((hit for hit in rerank.hits if hit.passage_id in candidates), start=1))
    return replace(result, rerank_depth=depth, stages={**result.stages, stage: replace(rerank, hits=hits)})


def _judged_queries(judgments: Judgments, max_queries: int | None) -> list[Query]:
    if max_queries is not None and max_queries < 1:
        raise ValueError(f"max_queries={max_queries} evaluates nothing; use max_queries >= 1, or None for all")
    queries = [query for query in judgments.queries if judgments.qrels.get(query.query_id)]
    if max_queries is not None:
        queries = queries[:max_queries]
    if not queries:
        raise ValueError("no query has judgments; check that the qrels' query ids match the queries file")
    return queries
