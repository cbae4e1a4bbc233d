"""Evaluation: judgments (queries + qrels) in, nDCG@10, MRR@10, Recall@10 and Recall@100 per stage out.

Metrics come from ir-measures (pytrec_eval underneath), so the figures match what IR papers report.
Relevance is judged per document unless the qrels name passages: a stage ranks a document at the rank
of its best passage, and the ranking is deduplicated by document before the metrics are computed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import ir_measures

from .reading import read_paths
from .types import STAGES, FirstStage, Hit, Problem, ReadResult, SearchResult

if TYPE_CHECKING:
    from .pipeline import Index

Level = Literal["document", "passage"]
RETRIEVAL_DEPTH = 100  # deep enough for Recall@100
BASE_METRICS = {"ndcg": ir_measures.nDCG, "mrr": ir_measures.RR, "recall": ir_measures.R}


@dataclass(frozen=True)
class Query:
    query_id: str
    text: str


@dataclass(frozen=True)
class Judgments:
    """Queries and graded relevance judgments (qrels: query id -> judged id -> grade)."""

    queries: tuple[Query, ...]
    qrels: Mapping[str, Mapping[str, int]]
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A corpus with its judgments, as read from a SQuAD JSON file or a BEIR-style folder."""

    name: str
    corpus: ReadResult
    judgments: Judgments


@dataclass(frozen=True)
class EvalReport:
    """Metrics per stage, plus what they were computed on."""

    passages: int
    queries: int
    languages: dict[str, int]
    models: dict[str, str]
    stages: dict[str, dict[str, float]]
    timings_s: dict[str, float]
    level: Level
    judged_ids: int  # distinct judged ids in the qrels of the evaluated queries
    matched_ids: int  # ... of which the corpus has
    per_query: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # stage -> query -> metric
    notes: tuple[str, ...] = ()
    cancelled: bool = False

    def to_json(self) -> dict[str, object]:
        """The CLI's `--json` object (per-query figures left out)."""
        return {
            "passages": self.passages, "queries": self.queries, "languages": self.languages,
            "models": self.models, "stages": self.stages, "timings_s": self.timings_s, "level": self.level,
            "judged_ids": self.judged_ids, "matched_ids": self.matched_ids, "notes": list(self.notes),
            "cancelled": self.cancelled,
        }


# -- reading judgments --------------------------------------------------------------------------------

def read_queries(path: str | Path) -> tuple[tuple[Query, ...], tuple[Problem, ...]]:
    """Read queries from BEIR `queries.jsonl` (``{"_id", "text"}``) or a TSV file (``id<TAB>query``).

    Bad lines become Problems naming the line; the good ones are kept.
    """
    path = Path(path)
    queries: list[Query] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                record = json.loads(line)
                query_id, text = str(record.get("_id", record.get("id", ""))).strip(), str(record.get("text", ""))
            except (json.JSONDecodeError, AttributeError) as error:
                problems.append(Problem(path.name, f"not a JSON object ({error})", number))
                continue
        else:
            query_id, _, text = line.partition("\t")
            query_id = query_id.strip()
        if not query_id or not text.strip():
            problems.append(Problem(path.name, "expected a query id and a query text", number))
        elif query_id in seen:
            problems.append(Problem(path.name, f"query id {query_id!r} appears again; the first one is kept", number))
        else:
            seen.add(query_id)
            queries.append(Query(query_id, text.strip()))
    return tuple(queries), tuple(problems)


def read_qrels(path: str | Path) -> tuple[dict[str, dict[str, int]], tuple[Problem, ...]]:
    """Read TREC qrels (``qid 0 docid grade``) or BEIR qrels TSV (``query-id<TAB>corpus-id<TAB>score``,
    header optional). Malformed lines become Problems naming the line; the rest is used."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    problems: list[Problem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if number == 1 and fields[0].lower() in {"query-id", "query_id", "qid", "query"}:
            continue
        if len(fields) == 4:
            query_id, _, doc_id, grade = fields
        elif len(fields) == 3:
            query_id, doc_id, grade = fields
        else:
            problems.append(Problem(path.name, f"expected 'query 0 doc grade' (TREC) or 'query doc grade' (BEIR), "
                                               f"found {len(fields)} fields", number))
            continue
        try:
            qrels.setdefault(query_id, {})[doc_id] = int(float(grade))
        except ValueError:
            problems.append(Problem(path.name, f"grade {grade!r} is not a number", number))
    return qrels, tuple(problems)


def read_judgments(queries_path: str | Path, qrels_path: str | Path) -> Judgments:
    """Queries and qrels together; qrels of unknown queries are reported and dropped."""
    queries, query_problems = read_queries(queries_path)
    qrels, qrel_problems = read_qrels(qrels_path)
    known = {query.query_id for query in queries}
    unknown = sorted(set(qrels) - known)
    problems = [*query_problems, *qrel_problems]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        problems.append(Problem(Path(qrels_path).name, f"{len(unknown)} judged query id(s) are not in "
                                                       f"{Path(queries_path).name}: {shown}"))
    return Judgments(queries, {q: d for q, d in qrels.items() if q in known}, tuple(problems))


def load_dataset(path: str | Path) -> Dataset:
    """Read a SQuAD-format JSON file or a BEIR-style folder.

    SQuAD: each paragraph is a document (id ``article-paragraph``, as the corpus reader names it) and
    each question a query whose one relevant document is its paragraph. BEIR folder: `corpus.jsonl`,
    `queries.jsonl` (or `queries.tsv`) and `qrels/test.tsv` (or a TREC `qrels.trec` / `*.qrels`).
    Raises ValueError naming what is missing.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        return Dataset(path.stem, read_paths([path]), _squad_judgments(path))
    if not path.is_dir():
        raise ValueError(f"{path} is neither a SQuAD-format .json file nor a BEIR folder")
    corpus_path = _first_existing(path, ["corpus.jsonl"])
    queries_path = _first_existing(path, ["queries.jsonl", "queries.tsv"])
    qrels_path = _first_existing(path, ["qrels/test.tsv", "qrels.trec", "qrels/test.trec", "qrels.tsv",
                                        *sorted(str(p.relative_to(path)) for p in path.glob("*.qrels"))])
    missing = [name for name, found in (("corpus.jsonl", corpus_path), ("queries.jsonl or queries.tsv", queries_path),
                                        ("qrels/test.tsv or qrels.trec", qrels_path)) if found is None]
    if missing:
        raise ValueError(f"{path} is not a complete BEIR folder: missing {', '.join(missing)}")
    return Dataset(path.name, read_paths([corpus_path]), read_judgments(queries_path, qrels_path))


def _first_existing(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _squad_judgments(path: Path) -> Judgments:
    data = json.loads(path.read_text(encoding="utf-8-sig")).get("data", [])
    queries: list[Query] = []
    qrels: dict[str, dict[str, int]] = {}
    for article_index, article in enumerate(data):
        for paragraph_index, paragraph in enumerate(article.get("paragraphs", [])):
            doc_id = str(paragraph.get("id", f"{article_index}-{paragraph_index}"))
            for qa in paragraph.get("qas", []):
                query_id = str(qa.get("id", f"{doc_id}-q{len(queries)}"))
                queries.append(Query(query_id, qa["question"]))
                qrels[query_id] = {doc_id: 1}
    return Judgments(tuple(queries), qrels)


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
    """Ranked ids per stage of one search. The rerank stage continues past its depth with the rest of
    the first stage's candidates, in first-stage order, as a real two-stage system would."""
    rankings = {name: ranked_ids(stage.hits, level) for name, stage in result.stages.items()
                if stage.error is None and name != "rerank"}
    rerank = result.stages.get("rerank")
    if rerank is not None and rerank.error is None:
        reranked = {hit.passage_id for hit in rerank.hits}
        tail = [hit for hit in result.stages[result.candidates_from].hits if hit.passage_id not in reranked]
        rankings["rerank"] = ranked_ids([*rerank.hits, *tail], level)
    return rankings


def judgment_level(index: Index, qrels: Mapping[str, Mapping[str, int]]) -> tuple[Level, int, int]:
    """Whether the qrels name documents or passages (whichever matches more), with judged and matched counts."""
    judged = {doc_id for docs in qrels.values() for doc_id in docs}
    doc_ids = {passage.doc_id for passage in index.passages}
    passage_ids = {passage.passage_id for passage in index.passages}
    documents, passages = len(judged & doc_ids), len(judged & passage_ids)
    if passages > documents:
        return "passage", len(judged), passages
    return "document", len(judged), documents


def evaluate(index: Index, judgments: Judgments, *, stages: Sequence[str] = STAGES, k: int = 10,
             rerank_depth: int = 20, candidates_from: FirstStage = "hybrid", max_queries: int | None = None,
             progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> EvalReport:
    """Run every judged query through the stages and compute the metrics of each stage.

    `should_stop` is polled between queries; a stopped run reports the queries finished so far.
    Raises ValueError for an unknown stage or when no query has judgments.
    """
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    queries = [query for query in judgments.queries if judgments.qrels.get(query.query_id)]
    if max_queries is not None:
        queries = queries[:max_queries]
    if not queries:
        raise ValueError("no query has judgments; check that the qrels' query ids match the queries file")
    level, judged_ids, matched_ids = judgment_level(index, {q.query_id: judgments.qrels[q.query_id] for q in queries})
    rerank = "rerank" in stages and rerank_depth > 0
    depth = max(RETRIEVAL_DEPTH, k, rerank_depth)
    rankings: dict[str, dict[str, list[str]]] = {stage: {} for stage in stages}
    seconds: dict[str, list[float]] = {stage: [] for stage in stages}
    models: dict[str, str] = {}
    notes: dict[str, list[str]] = {}  # note -> the stages it concerns
    pairs = 0
    rerank_seconds = 0.0
    started = time.perf_counter()
    cancelled = False
    for done, query in enumerate(queries, start=1):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        result = index.retrieve(query.text, k=depth, rerank_depth=rerank_depth if rerank else 0,
                                candidates_from=candidates_from, stages=stages)
        if rerank:
            result = index.rerank(result)
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
        if progress is not None:
            progress(done, len(queries))
    names = metric_names(k)
    metrics = {}
    per_query = {}
    for name in stages:
        if not rankings[name] and any(name in stage_names for stage_names in notes.values()):
            continue  # the stage could not run (e.g. no reranker); its note says why
        metrics[name], per_query[name] = compute_metrics(judgments.qrels, rankings[name], names)
    timings = {f"{name}_mean_query": sum(values) / len(values) for name, values in seconds.items() if values}
    timings.update({f"build_{step}": value for step, value in index.report.timings_s.items()})
    timings["queries_total"] = time.perf_counter() - started
    if rerank and rerank_seconds > 0:
        timings["rerank_pairs_per_second"] = pairs / rerank_seconds
    evaluated = len(next(iter(rankings.values()), {}))
    return EvalReport(
        passages=len(index), queries=evaluated, languages=dict(index.report.languages),
        models={"dense": index.encoder.encoder.label, **models}, stages=metrics, timings_s=timings, level=level,
        judged_ids=judged_ids, matched_ids=matched_ids, per_query=per_query, cancelled=cancelled,
        notes=tuple(f"{', '.join(concerned)}: {text}" for text, concerned in notes.items()),
    )
