"""Plain forms of engine results: JSON-ready dicts for the CLI's --json and the app's API, and CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict

from .pipeline import BuildReport
from .types import STAGES, Hit, SearchResult, StageResult

CSV_COLUMNS = ("query", "stage", "rank", "passage_id", "doc_id", "score", "sigmoid", "language",
               "language_probability", *(f"rank_in_{stage}" for stage in STAGES), "title", "text")


def hit_to_dict(hit: Hit) -> dict[str, object]:
    """One hit as JSON-ready values; `ranks` holds its rank in each other stage (None: not returned)."""
    return {
        "rank": hit.rank, "passage_id": hit.passage_id, "doc_id": hit.doc_id, "score": hit.score,
        "sigmoid": hit.sigmoid, "truncated": hit.truncated, "language": hit.language.code,
        "language_group": hit.language.group, "language_probability": hit.language.probability,
        "title": hit.title, "text": hit.text, "ranks": dict(hit.ranks),
    }


def stage_to_dict(stage: StageResult, k: int | None = None) -> dict[str, object]:
    """A stage's model, timing, notes and its top `k` hits (all when k is None)."""
    hits = stage.hits if k is None else stage.hits[:k]
    return {
        "model": stage.model, "seconds": stage.seconds, "note": stage.note or None, "error": stage.error,
        "pairs_per_second": stage.pairs_per_second, "hits": [hit_to_dict(hit) for hit in hits],
    }


def result_to_dict(result: SearchResult, k: int | None = None) -> dict[str, object]:
    """Every stage of a search, in stage order."""
    return {
        "query": result.query,
        "query_language": {"code": result.query_language.code, "group": result.query_language.group,
                           "probability": result.query_language.probability},
        "candidates_from": result.candidates_from,
        "rerank_depth": result.rerank_depth,
        "stages": {name: stage_to_dict(stage, k) for name, stage in result.stages.items()},
    }


def report_to_dict(report: BuildReport) -> dict[str, object]:
    """What a build did, with problems as ``{"source", "line", "message", "skipped"}`` records."""
    return {**asdict(report), "problems": [asdict(problem) for problem in report.problems]}


def results_to_csv(result: SearchResult, k: int | None = None) -> str:
    """CSV text with a header row (CSV_COLUMNS) and one row per (stage, hit), stages in order, each
    stage's top `k` hits (all when k is None). ``rank_in_<stage>`` is the hit's rank in that stage,
    its own included, blank where that stage did not return it; `sigmoid` is blank outside rerank.
    Fields holding commas, quotes or line breaks are quoted (RFC 4180, ``\\r\\n`` row ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for name, stage in result.stages.items():
        for hit in stage.hits if k is None else stage.hits[:k]:
            ranks = {**hit.ranks, name: hit.rank}
            writer.writerow([
                result.query, name, hit.rank, hit.passage_id, hit.doc_id, hit.score,
                "" if hit.sigmoid is None else hit.sigmoid, hit.language.code, hit.language.probability,
                *("" if ranks.get(other) is None else ranks[other] for other in STAGES), hit.title, hit.text,
            ])
    return buffer.getvalue()
