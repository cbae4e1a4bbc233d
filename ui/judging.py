"""Judging in place: the relevance marks a session gives to results, as qrels, runs and metrics.

Marks are kept per passage (a card is a passage). Everything here is pure: each change returns a new
`SessionJudgments`, which the app keeps in `gr.State`, so sessions never share judgments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from search.evaluation import compute_metrics, stage_rankings
from search.judgments import Judgments, Query, qrels_to_trec, queries_to_tsv, run_to_trec
from search.stages import ordered
from search.types import SearchResult


@dataclass(frozen=True)
class SessionJudgments:
    """A session's queries, its graded marks (query id -> passage or document id -> grade) and, per
    judged query, the last result it was judged on (so metrics need no new search)."""

    queries: tuple[Query, ...] = ()
    qrels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    results: Mapping[str, SearchResult] = field(default_factory=dict)

    def query_id(self, text: str) -> str | None:
        """The id of a query with this text, if the session has one."""
        return next((query.query_id for query in self.queries if query.text == text.strip()), None)

    def grades_for(self, result: SearchResult) -> dict[str, int]:
        """The marks for `result`'s query, keyed by passage id (document-level marks apply to all of
        the document's passages shown)."""
        query_id = self.query_id(result.query)
        marks = self.qrels.get(query_id, {}) if query_id else {}
        grades: dict[str, int] = {}
        for stage in result.stages.values():
            for hit in stage.hits:
                grade = marks.get(hit.passage_id, marks.get(hit.doc_id))
                if grade is not None:
                    grades[hit.passage_id] = grade
        return grades

    @property
    def judgment_count(self) -> int:
        return sum(len(marks) for marks in self.qrels.values())


def judge(session: SessionJudgments, result: SearchResult, passage_id: str, grade: int) -> SessionJudgments:
    """Record `grade` (0, 1 or 2) for `passage_id` under `result`'s query. Raises ValueError otherwise."""
    if grade not in (0, 1, 2):
        raise ValueError(f"grade={grade!r} is not a relevance grade; use 0, 1 or 2")
    queries = session.queries
    query_id = session.query_id(result.query)
    if query_id is None:
        query_id = _new_query_id(session)
        queries = (*queries, Query(query_id, result.query.strip()))
    marks = {**session.qrels.get(query_id, {}), passage_id: grade}
    return SessionJudgments(queries, {**session.qrels, query_id: marks}, {**session.results, query_id: result})


def merge(session: SessionJudgments, loaded: Judgments) -> SessionJudgments:
    """Add loaded judgments (e.g. a file downloaded earlier) to the session's; loaded marks win."""
    queries = list(session.queries)
    qrels = {query_id: dict(marks) for query_id, marks in session.qrels.items()}
    for query in loaded.queries:
        known = next((q.query_id for q in queries if q.text == query.text), None)
        target = known or (query.query_id if all(q.query_id != query.query_id for q in queries)
                           else _new_query_id(replace(session, queries=tuple(queries))))
        if known is None:
            queries.append(Query(target, query.text))
        qrels.setdefault(target, {}).update(loaded.qrels.get(query.query_id, {}))
    return SessionJudgments(tuple(queries), qrels, dict(session.results))


def judged_metrics(session: SessionJudgments) -> dict[str, dict[str, float]]:
    """Per stage, the metrics over the judged queries whose results the session has."""
    metrics: dict[str, dict[str, float]] = {}
    for stage in _stages(session):
        rankings = {}
        for query_id, result in session.results.items():
            if stage in stage_rankings(result, "passage"):
                rankings[query_id] = stage_rankings(result, "passage")[stage]
        if rankings:
            metrics[stage], _ = compute_metrics(_passage_qrels(session), rankings)
    return metrics


class Export(NamedTuple):
    """The files a download can hold (name -> text) and those left out (name -> why, naming the id)."""

    files: dict[str, str]
    left_out: dict[str, str]


def export_files(session: SessionJudgments) -> Export:
    """The qrels and queries (TREC / TSV) and each stage's run over the judged queries (TREC), ready to
    download and to load back later. Each file is written on its own: one that can't be written (an id
    with whitespace, e.g. from an uploaded `my notes.txt`, which TREC files cannot hold) is left out with
    the reason, and the others still come."""
    writers: dict[str, Callable[[], str]] = {
        "qrels.trec": lambda: qrels_to_trec(session.qrels),
        "queries.tsv": lambda: queries_to_tsv(session.queries),
    }
    for stage in _stages(session):
        rankings = {}
        for query_id, result in session.results.items():
            ranking = stage_rankings(result, "passage").get(stage)
            if ranking:
                rankings[query_id] = [(passage_id, float(len(ranking) - rank)) for rank, passage_id in
                                      enumerate(ranking)]
        if rankings:
            writers[f"run-{stage}.trec"] = lambda rankings=rankings, stage=stage: run_to_trec(
                rankings, f"explorer-{stage}")
    files: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for name, write in writers.items():
        try:
            files[name] = write()
        except ValueError as error:
            left_out[name] = str(error)
    return Export(files, left_out)


def _passage_qrels(session: SessionJudgments) -> dict[str, dict[str, int]]:
    # Marks given to documents (loaded files) count for each of the document's passages shown.
    qrels: dict[str, dict[str, int]] = {}
    for query_id, marks in session.qrels.items():
        result = session.results.get(query_id)
        expanded = dict(marks)
        if result is not None:
            for stage in result.stages.values():
                for hit in stage.hits:
                    if hit.passage_id not in expanded and hit.doc_id in marks:
                        expanded[hit.passage_id] = marks[hit.doc_id]
        qrels[query_id] = expanded
    return qrels


def _new_query_id(session: SessionJudgments) -> str:
    taken = {query.query_id for query in session.queries}
    number = len(taken) + 1
    while f"u{number}" in taken:
        number += 1
    return f"u{number}"


def _stages(session: SessionJudgments) -> tuple[str, ...]:
    # Every stage any of the session's results has, in stage order.
    return ordered(name for result in session.results.values() for name in result.stages)
