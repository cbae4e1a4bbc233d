"""Evaluation: judgments (queries + qrels) in, nDCG@10, MRR@10, Recall@10 and Recall@100 per stage out.

Metrics come from ir-measures (pytrec_eval underneath), so the figures match what IR papers report.
Relevance is judged per document unless the qrels name passages: a stage ranks a document at the rank
of its best passage, and the ranking is deduplicated by document before the metrics are computed.
Reading and writing judgments lives in `judgments`; the readers are re-exported here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import ir_measures

from .compare import Agreement, agreement
from .decoding import decode_text
from .formats.json_records import JsonError, load_json
from .formats.squad import is_squad, squad_paragraphs
from .inference import RerankCancelled
from .judgments import (
    Judgments,
    Level,
    Query,
    load_judgments,
    match_judgments,
    read_judgments,
    read_qrels,
    read_queries,
)
from .limits import FileBudget, LimitExceeded, ReadLimits
from .reading import read_paths
from .score_cache import CachedReranker
from .types import (
    ALL_STAGES,
    COMPARE_STAGE,
    FIRST_STAGES,
    RERANK_STAGES,
    STAGES,
    FirstStage,
    Hit,
    Problem,
    ReadResult,
    SearchResult,
)

if TYPE_CHECKING:
    from .pipeline import Index

__all__ = [
    "DEPTHS", "RETRIEVAL_DEPTH", "Dataset", "DepthPoint", "Estimate", "EvalReport", "Judgments", "Level",
    "MeanAgreement", "Query",
    "compute_metrics", "cross_lingual_judgments", "depth_tradeoff", "estimate_evaluation", "evaluate",
    "judgment_level", "landed_ranks", "load_dataset", "metric_names", "ranked_ids", "read_judgments", "read_qrels",
    "read_queries", "reranked_at_depth", "stage_rankings",
]

RETRIEVAL_DEPTH = 100  # deep enough for Recall@100
DEPTHS = (10, 20, 50, 100)  # rerank depths `depth_tradeoff` compares by default
ESTIMATE_PAIRS = 16  # pairs reranked to measure pairs/s: one batch, about a second on a CPU
BASE_METRICS = {"ndcg": ir_measures.nDCG, "mrr": ir_measures.RR, "recall": ir_measures.R}


@dataclass(frozen=True)
class Dataset:
    """A corpus with its judgments, as read from a SQuAD JSON file or a BEIR-style folder."""

    name: str
    corpus: ReadResult
    judgments: Judgments


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
    # With rerank and rerank-b: their mean agreement over the queries (see `MeanAgreement`).
    agreement: MeanAgreement | None = None

    def to_json(self) -> dict[str, object]:
        """The CLI's `--json` object (per-query figures left out)."""
        return {
            "passages": self.passages, "queries": self.queries, "languages": self.languages,
            "query_languages": self.query_languages,
            "models": self.models, "stages": self.stages, "timings_s": self.timings_s, "level": self.level,
            "judged_ids": self.judged_ids, "matched_ids": self.matched_ids, "notes": list(self.notes),
            "cancelled": self.cancelled,
            **({"agreement": asdict(self.agreement)} if self.agreement is not None else {}),
        }


@dataclass(frozen=True)
class MeanAgreement:
    """How far the two rerankers (rerank, rerank-b) agreed, averaged over `queries` queries: shared@k and
    Jaccard@k of their top k, and Kendall's tau over the candidates (over the queries that had one)."""

    k: int
    queries: int
    shared: float
    jaccard: float
    kendall_tau: float | None


@dataclass(frozen=True)
class Estimate:
    """How long an evaluation should take here: in all, per query in the first stages, and the
    reranker's measured throughput (None when no rerank was measured)."""

    seconds: float
    queries: int
    first_stage_seconds: float
    pairs_per_second: float | None


@dataclass(frozen=True)
class DepthPoint:
    """nDCG@10 of a rerank stage (rerank, or rerank-b: the second reranker) at one rerank depth, and the
    seconds a query costs at that depth."""

    depth: int
    ndcg_at_10: float
    seconds_per_query: float
    stage: str = "rerank"


# -- datasets -----------------------------------------------------------------------------------------

def load_dataset(path: str | Path, *, queries_from: str | Path | None = None) -> Dataset:
    """Read a SQuAD-format JSON file or a BEIR-style folder.

    SQuAD: each paragraph is a document and each question a query whose one relevant document is its
    paragraph; both ids come from `formats.squad.squad_paragraphs` (the paragraph's ``id``, else
    ``article-paragraph``; repeats kept as ``id~2``), as the corpus reader names them. BEIR folder:
    `corpus.jsonl`, `queries.jsonl` (or `queries.tsv`) and `qrels/test.tsv` (or another `qrels/*.tsv`, a TREC
    `qrels.trec` / `*.qrels`). Raises ValueError naming what is missing.

    `queries_from`: another dataset (SQuAD file or BEIR folder) whose query ids match this one's, e.g. the
    same XQuAD questions in another language. Its questions are asked against this dataset's passages and
    judged by this dataset's judgments (see `cross_lingual_judgments`).
    """
    dataset = _read_dataset(Path(path))
    if queries_from is None:
        return dataset
    other = Path(queries_from)
    judgments = cross_lingual_judgments(dataset.judgments, _read_judgments_only(other), str(other))
    return Dataset(f"{dataset.name} (queries of {_dataset_name(other)})", dataset.corpus, judgments)


def cross_lingual_judgments(judgments: Judgments, other: Judgments, source: str) -> Judgments:
    """`judgments` with the query texts of `other` (matched by query id): the queries of `other` that
    `judgments` judges, in `other`'s order. Queries of `other` without judgments here are left out, with a
    warning in `problems`. Raises ValueError when no query id matches.

    >>> german = Judgments((Query("q1", "Wann kam Tee nach Japan?"),), {"q1": {"tea": 1}})
    >>> english = Judgments((Query("q1", "When did tea reach Japan?"), Query("q9", "?")), {})
    >>> both = cross_lingual_judgments(german, english, "en.json")
    >>> both.queries
    (Query(query_id='q1', text='When did tea reach Japan?'),)
    >>> dict(both.qrels), [str(problem) for problem in both.problems]
    ({'q1': {'tea': 1}}, ['en.json: 1 of its 2 queries has no judgments in the dataset and is left out'])
    """
    judged = {query_id for query_id, grades in judgments.qrels.items() if grades}
    queries = tuple(query for query in other.queries if query.query_id in judged)
    if not queries:
        raise ValueError(f"none of the {len(other.queries)} queries of {source} has an id that the dataset judges; "
                         "--queries-from needs a dataset with the same query ids (e.g. another language of XQuAD)")
    problems = [*judgments.problems, *other.problems]
    left_out = len(other.queries) - len(queries)
    if left_out:
        has, are = ("has", "is") if left_out == 1 else ("have", "are")
        problems.append(Problem(source, f"{left_out} of its {len(other.queries)} queries {has} no judgments in the "
                                        f"dataset and {are} left out", skipped=False))
    kept = {query.query_id for query in queries}
    return Judgments(queries, {query_id: judgments.qrels[query_id] for query_id in kept}, tuple(problems),
                     {key: value for key, value in judgments.sources.items() if key[0] in kept})


def _read_dataset(path: Path) -> Dataset:
    if path.is_file() and path.suffix == ".json":
        return Dataset(path.stem, read_paths([path]), _squad_judgments(path))
    _check_beir_folder(path)
    try:
        judgments = load_judgments([path], names=[str(path)])
    except ValueError as error:
        raise ValueError(f"{path} is not a complete BEIR folder: {error}") from None
    return Dataset(path.name, read_paths([path / "corpus.jsonl"]), judgments)


def _read_judgments_only(path: Path) -> Judgments:
    """The queries and judgments of a dataset, without reading its corpus."""
    if path.is_file() and path.suffix == ".json":
        return _squad_judgments(path)
    if not path.is_dir():
        raise ValueError(f"{path} is neither a SQuAD-format .json file nor a BEIR folder")
    try:
        return load_judgments([path], names=[str(path)])
    except ValueError as error:
        raise ValueError(f"{path} holds no queries with judgments: {error}") from None


def _check_beir_folder(path: Path) -> None:
    if not path.is_dir():
        raise ValueError(f"{path} is neither a SQuAD-format .json file nor a BEIR folder")
    if not (path / "corpus.jsonl").is_file():
        raise ValueError(f"{path} is not a complete BEIR folder: missing corpus.jsonl")


def _dataset_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def _squad_judgments(path: Path) -> Judgments:
    """Each question judged against its own paragraph, by the ids `squad_paragraphs` gives the corpus too."""
    source = str(path)
    decoded = decode_text(path.read_bytes(), source)
    if decoded.text is None:
        raise ValueError(str(decoded.problems[-1]))
    try:
        value = load_json(decoded.text, FileBudget(ReadLimits()))
    except JsonError as error:
        where = f"{source}, line {error.line}" if error.line is not None else source
        raise ValueError(f"{where}: {error.message}") from None
    except LimitExceeded as error:
        raise ValueError(f"{source}: {error}") from None
    if not isinstance(value, dict) or not is_squad(value):
        raise ValueError(f"{source} is not a SQuAD file: expected {{'data': [{{'paragraphs': [{{'context': ..., "
                         "'qas': [{'id': ..., 'question': ...}]}]}]}")
    squad = squad_paragraphs(value, source)
    queries = [Query(question.query_id, question.text) for paragraph in squad.paragraphs
               for question in paragraph.questions]
    qrels = {question.query_id: {paragraph.doc_id: 1} for paragraph in squad.paragraphs
             for question in paragraph.questions}
    return Judgments(tuple(queries), qrels, squad.question_problems)


# -- metrics ------------------------------------------------------------------------------------------

def metric_names(k: int = 10) -> tuple[str, ...]:
    """The metrics reported: nDCG@10, MRR@10, Recall@10 and Recall@100, plus the same at `k` if k != 10."""
    cutoffs = [10] if k == 10 else [10, k]
    names = [f"{base}@{cutoff}" for cutoff in cutoffs for base in ("ndcg", "mrr", "recall")]
    return tuple(dict.fromkeys([*names, "recall@100"]))


def compute_metrics(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]],
                    names: Sequence[str] = metric_names()) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Return (mean over queries, per query) of each metric for ranked id lists, best first.

    Every query in `rankings` that has judgments counts, including those whose ranking is empty (they
    score 0), so a stage that finds nothing is not flattered.
    """
    measures = {name: _measure(name) for name in names}
    judged = [query_id for query_id in rankings if qrels.get(query_id)]
    run: dict[str, dict[str, float]] = {}
    for query_id in judged:
        ranking = list(dict.fromkeys(rankings[query_id]))
        # Scores strictly decreasing with rank, so no tie-breaking by id can reorder the list.
        run[query_id] = {doc_id: float(len(ranking) - rank) for rank, doc_id in enumerate(ranking)}
        if not run[query_id]:
            run[query_id] = {"\x00no-result": 0.0}
    per_query: dict[str, dict[str, float]] = {query_id: {} for query_id in judged}
    sub_qrels = {query_id: dict(qrels[query_id]) for query_id in judged}
    by_measure = {measure: name for name, measure in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), sub_qrels, run):
        per_query[metric.query_id][by_measure[metric.measure]] = float(metric.value)
    means = {name: (sum(q[name] for q in per_query.values()) / len(per_query) if per_query else 0.0)
             for name in names}
    return means, per_query


def _measure(name: str):
    base, _, cutoff = name.partition("@")
    return BASE_METRICS[base] @ int(cutoff)


def ranked_ids(hits: Sequence[Hit], level: Level) -> list[str]:
    """The ids a stage ranks: passages as they are, or documents at the rank of their best passage."""
    ids = [hit.passage_id if level == "passage" else hit.doc_id for hit in hits]
    return list(dict.fromkeys(ids))


def stage_rankings(result: SearchResult, level: Level) -> dict[str, list[str]]:
    """Ranked ids per stage of one search. A rerank stage (rerank, rerank-b) continues past its depth
    with the rest of the first stage's candidates, in first-stage order, as a real two-stage system would."""
    rankings = {name: ranked_ids(stage.hits, level) for name, stage in result.stages.items()
                if stage.error is None and name not in RERANK_STAGES}
    for name in RERANK_STAGES:
        rerank = result.stages.get(name)
        if rerank is not None and rerank.error is None:
            reranked = {hit.passage_id for hit in rerank.hits}
            tail = [hit for hit in result.stages[result.candidates_from].hits if hit.passage_id not in reranked]
            rankings[name] = ranked_ids([*rerank.hits, *tail], level)
    return rankings


def judgment_level(index: Index, qrels: Mapping[str, Mapping[str, int]]) -> tuple[Level, int, int]:
    """Whether the qrels name documents or passages (whichever matches more), with judged and matched
    counts; see `judgments.match_judgments`."""
    match = match_judgments(Judgments((), qrels), index.passages)
    return match.level, match.judged, match.matched


def landed_ranks(ranking: Sequence[str], judged: Mapping[str, int]) -> tuple[int, ...]:
    """The 1-based ranks in `ranking` of the ids judged relevant (grade > 0), best first.

    >>> landed_ranks(["a", "b", "c"], {"c": 1, "a": 0, "x": 2})
    (3,)
    """
    return tuple(rank for rank, ranked_id in enumerate(ranking, start=1) if judged.get(ranked_id, 0) > 0)


# -- runs ---------------------------------------------------------------------------------------------

def evaluate(index: Index, judgments: Judgments, *, stages: Sequence[str] = STAGES, k: int = 10,
             rerank_depth: int = 20, candidates_from: FirstStage = "hybrid", max_queries: int | None = None,
             progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> EvalReport:
    """Run every judged query through the stages and compute the metrics of each stage.

    `stages` may include rerank-b, the second reranker (`Settings.compare_reranker_model`), which reranks
    the same candidates after rerank.
    `should_stop` is polled between queries and by the reranker between batches; a stopped run reports
    the queries finished so far (`cancelled` set; no metrics when none finished). Raises ValueError for
    an unknown stage, rerank-b without a second reranker, a max_queries below 1, or when no query has
    judgments.
    """
    _check_stages(stages)
    for name in RERANK_STAGES:
        if name in stages and rerank_depth <= 0:
            raise ValueError(f"the {name} stage needs rerank_depth >= 1 (it reranks that many first-stage "
                             f"candidates); raise the rerank depth or leave the {name} stage out")
    if COMPARE_STAGE in stages and not index.has_compare_reranker:
        raise ValueError(f"the {COMPARE_STAGE} stage needs a second reranker; set one (--compare-reranker-model, "
                         f"or 'Compare with' in the app's model panel) or leave {COMPARE_STAGE} out")
    queries = _judged_queries(judgments, max_queries)
    level, judged_ids, matched_ids = judgment_level(index, {q.query_id: judgments.qrels[q.query_id] for q in queries})
    reranks = [name for name in RERANK_STAGES if name in stages]
    rerank = bool(reranks)
    depth = max(RETRIEVAL_DEPTH, k, rerank_depth)
    rankings: dict[str, dict[str, list[str]]] = {stage: {} for stage in stages}
    seconds: dict[str, list[float]] = {stage: [] for stage in stages}
    models: dict[str, str] = {}
    notes: dict[str, list[str]] = {}  # note -> the stages it concerns
    query_texts: dict[str, str] = {}
    query_languages: Counter[str] = Counter()
    agreements: list[Agreement] = []
    pairs = pairs_b = 0
    rerank_seconds = rerank_b_seconds = 0.0
    started = time.perf_counter()
    cancelled = False
    for done, query in enumerate(queries, start=1):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        result = index.retrieve(query.text, k=depth, rerank_depth=rerank_depth if rerank else 0,
                                candidates_from=candidates_from, stages=stages)
        try:
            for name in reranks:
                result = index.rerank(result, should_stop=should_stop, stage=name)
        except RerankCancelled:
            cancelled = True
            break
        query_texts[query.query_id] = query.text
        query_languages[result.query_language.group] += 1
        both = agreement(result, k)
        if both is not None:
            agreements.append(both)
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
            if name == "rerank":
                pairs += len(stage.hits)
                rerank_seconds += stage.seconds
            elif name == COMPARE_STAGE:
                pairs_b += len(stage.hits)
                rerank_b_seconds += stage.seconds
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
    if "rerank" in reranks and rerank_seconds > 0:
        # Pairs found in the score cache take no time: the reranker's measured speed is the honest figure.
        timings["rerank_pairs_per_second"] = _measured_pairs_per_second(index) or pairs / rerank_seconds
    if COMPARE_STAGE in reranks and rerank_b_seconds > 0:
        timings[f"{COMPARE_STAGE}_pairs_per_second"] = (_measured_pairs_per_second(index, COMPARE_STAGE)
                                                        or pairs_b / rerank_b_seconds)
    return EvalReport(
        passages=len(index), queries=len(query_texts), languages=dict(index.report.languages),
        models={"dense": index.encoder.model.label, **models}, stages=metrics, timings_s=timings, level=level,
        judged_ids=judged_ids, matched_ids=matched_ids, per_query=per_query, cancelled=cancelled,
        notes=tuple(f"{', '.join(concerned)}: {text}" for text, concerned in notes.items()),
        landed=landed, query_texts=query_texts, query_languages=dict(query_languages.most_common()),
        agreement=_mean_agreement(agreements, k),
    )


def _mean_agreement(agreements: Sequence[Agreement], k: int) -> MeanAgreement | None:
    if not agreements:
        return None
    taus = [one.kendall_tau for one in agreements if one.kendall_tau is not None]
    return MeanAgreement(k, len(agreements), sum(one.shared for one in agreements) / len(agreements),
                         sum(one.jaccard for one in agreements) / len(agreements),
                         sum(taus) / len(taus) if taus else None)


def estimate_evaluation(index: Index, n_queries: int, *, stages: Sequence[str], rerank_depth: int,
                        candidates_from: FirstStage, sample_queries: Sequence[str]) -> Estimate:
    """Estimate how long `evaluate` will take for `n_queries` queries on this machine.

    Times up to two of `sample_queries` through the first stages `stages` needs (the faster run counts,
    so a first call's warm-up is left out) and, when `stages` include rerank, reranks a few real
    candidates (ESTIMATE_PAIRS) to measure pairs/s here, then extrapolates:
    n_queries x (first-stage seconds + rerank_depth / pairs_per_second). Loads the reranker if it is not
    loaded yet (that time is not counted). No stage gives an estimate of 0 s. Raises ValueError for an
    unknown stage, a negative `n_queries`, an out-of-range depth or no non-empty sample query.

    >>> estimate = estimate_evaluation(index, 300, stages=STAGES, rerank_depth=20,
    ...                                candidates_from="hybrid", sample_queries=["what is tea"])  # doctest: +SKIP
    >>> round(estimate.seconds)  # doctest: +SKIP
    42
    """
    _check_stages(stages)
    if n_queries < 0:
        raise ValueError(f"n_queries={n_queries} is negative; pass the number of queries to evaluate")
    samples = [text for text in sample_queries if text.strip()][:2]
    if not samples:
        raise ValueError("no sample query to time; pass the text of one or two of the judged queries")
    rerank = "rerank" in stages and rerank_depth > 0
    if not rerank and not [stage for stage in stages if stage != "rerank"]:
        return Estimate(0.0, n_queries, 0.0, None)
    depth = max(RETRIEVAL_DEPTH, rerank_depth)
    results, timings = [], []
    for text in samples:
        started = time.perf_counter()
        results.append(index.retrieve(text, k=depth, rerank_depth=rerank_depth if rerank else 0,
                                      candidates_from=candidates_from, stages=stages))
        timings.append(time.perf_counter() - started)
    first_stage_seconds = min(timings)
    pairs_per_second = _measure_pairs_per_second(index, results) if rerank else None
    per_query = first_stage_seconds
    if pairs_per_second:
        per_query += min(rerank_depth, len(index)) / pairs_per_second
    if COMPARE_STAGE in stages and rerank_depth > 0:
        # The second reranker counts once it has been measured (a search with it, or an earlier run).
        measured_b = _measured_pairs_per_second(index, COMPARE_STAGE)
        if measured_b:
            per_query += min(rerank_depth, len(index)) / measured_b
    return Estimate(n_queries * per_query, n_queries, first_stage_seconds, pairs_per_second)


def _measure_pairs_per_second(index: Index, results: Sequence[SearchResult]) -> float | None:
    """The reranker's measured pairs/s when it has reranked before, else pairs/s of a real rerank of up
    to ESTIMATE_PAIRS candidates after a one-pair warm-up; None when the reranker can't be loaded or no
    sample query has a candidate."""
    result = max(results, key=lambda r: len(r.stages[r.candidates_from].hits))
    if not result.stages[result.candidates_from].hits:
        return None
    try:
        loaded = index.reranker()
    except ValueError:
        return None  # evaluate() reports why, as the rerank stage's note
    if isinstance(loaded.model, CachedReranker) and loaded.model.throughput().batches >= 2:
        return loaded.model.throughput().pairs_per_second  # measured past its warm-up batch already
    # The first forward pass pays one-off costs; the query itself is no corpus passage, so a reranker
    # that caches passage encodings gains nothing for the measured pairs.
    loaded.model.score(result.query, [result.query])
    probe = replace(result, rerank_depth=min(result.rerank_depth, ESTIMATE_PAIRS))
    return index.rerank(probe, loaded).stages["rerank"].pairs_per_second


def _measured_pairs_per_second(index: Index, stage: str = "rerank") -> float | None:
    """The loaded reranker's (of `stage`) measured speed (cached pairs excluded), or None without a measurement."""
    try:
        loaded = index.reranker() if stage == "rerank" else index.compare_reranker()
    except ValueError:
        return None
    if loaded is None:
        return None
    return loaded.model.throughput().pairs_per_second if isinstance(loaded.model, CachedReranker) else None


def depth_tradeoff(index: Index, judgments: Judgments, *, depths: Sequence[int] = DEPTHS,
                   candidates_from: FirstStage = "hybrid", max_queries: int | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   stages: Sequence[str] = ("rerank",)) -> tuple[DepthPoint, ...]:
    """nDCG@10 of each rerank stage of `stages` (rerank, and rerank-b: the second reranker) and seconds
    per query at each rerank depth, deepest work done once.

    Each judged query is retrieved once and its top max(depths) candidates are reranked once: a
    reranker scores each (query, passage) pair on its own, so the ranking at depth d is the top d
    candidates ordered by their rerank scores, then the rest of the first-stage ranking, exactly what
    `evaluate(..., rerank_depth=d)` ranks. (Above RETRIEVAL_DEPTH the hybrid candidates are fused from
    deeper lists, which can reorder their tail.) Depths beyond the corpus are clipped and repeats
    dropped; points come in increasing depth.

    `seconds_per_query` is derived, not timed per depth: the mean wall time of retrieving the candidates
    plus the mean number of pairs reranked at that depth times the reranker's measured seconds per pair
    (its `throughput()`, so pairs found in the score cache do not make a depth look cheap).
    `should_stop` is polled between queries and by the reranker between batches; the points then cover
    the finished queries (none: ()). Points come stage by stage (in `stages` order), each in increasing depth.
    Raises ValueError for a depth below 1, a bad `candidates_from`, a stage that is not a rerank stage,
    rerank-b without a second reranker, no judged query, or a reranker that can't be loaded.
    """
    if candidates_from not in FIRST_STAGES:
        raise ValueError(f"candidates_from={candidates_from!r} is not a first stage; use one of "
                         f"{', '.join(FIRST_STAGES)}")
    if not depths or any(int(depth) < 1 for depth in depths):
        raise ValueError(f"depths={tuple(depths)!r}: give one or more rerank depths, each at least 1")
    if not stages or any(stage not in RERANK_STAGES for stage in stages):
        raise ValueError(f"stages={tuple(stages)!r}: give one or more of {', '.join(RERANK_STAGES)}")
    clipped = sorted({min(int(depth), len(index)) for depth in depths})
    deepest = clipped[-1]
    queries = _judged_queries(judgments, max_queries)
    level = judgment_level(index, {q.query_id: judgments.qrels[q.query_id] for q in queries})[0]
    stages = list(dict.fromkeys(stages))
    loaded_by_stage = {stage: _stage_reranker(index, stage) for stage in stages}
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
        model = loaded_by_stage[stage].model
        measured = model.throughput().seconds_per_pair if isinstance(model, CachedReranker) else None
        seconds_per_pair = measured or (rerank_seconds[stage] / pairs[stage] if pairs[stage] else 0.0)
        for depth in clipped:
            means, _ = compute_metrics(judgments.qrels, rankings[stage][depth], ("ndcg@10",))
            seconds = (retrieve_seconds + pairs_at[stage][depth] * seconds_per_pair) / finished
            points.append(DepthPoint(depth, means["ndcg@10"], seconds, stage))
    return tuple(points)


def _stage_reranker(index: Index, stage: str):
    loaded = index.reranker() if stage == "rerank" else index.compare_reranker()
    if loaded is None:
        raise ValueError(f"the {COMPARE_STAGE} stage needs a second reranker; set one (--compare-reranker-model, "
                         f"or 'Compare with' in the app's model panel) or leave {COMPARE_STAGE} out")
    return loaded


def reranked_at_depth(result: SearchResult, depth: int, stage: str = "rerank") -> SearchResult:
    """`result` (with the rerank stage `stage`) as if only its top `depth` candidates had been reranked.

    Valid because a pair's score does not depend on the other candidates; ties keep candidate order,
    as in `Index.rerank`.
    """
    candidates = {hit.passage_id for hit in result.stages[result.candidates_from].hits[:depth]}
    rerank = result.stages[stage]
    hits = tuple(replace(hit, rank=rank) for rank, hit in
                 enumerate((hit for hit in rerank.hits if hit.passage_id in candidates), start=1))
    return replace(result, rerank_depth=depth, stages={**result.stages, stage: replace(rerank, hits=hits)})


def _check_stages(stages: Sequence[str]) -> None:
    unknown = [stage for stage in stages if stage not in ALL_STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(ALL_STAGES)}")


def _judged_queries(judgments: Judgments, max_queries: int | None) -> list[Query]:
    if max_queries is not None and max_queries < 1:
        raise ValueError(f"max_queries={max_queries} evaluates nothing; use max_queries >= 1, or None for all")
    queries = [query for query in judgments.queries if judgments.qrels.get(query.query_id)]
    if max_queries is not None:
        queries = queries[:max_queries]
    if not queries:
        raise ValueError("no query has judgments; check that the qrels' query ids match the queries file")
    return queries
