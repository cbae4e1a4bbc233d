"""Hand-made hits, stages and results for tests that need no index: build exactly the rankings to check."""

from __future__ import annotations

from search.types import Hit, Language, SearchResult, StageResult

EN = Language("en", "en", 0.99)


def make_hit(passage_id: str, rank: int, *, doc_id: str | None = None, ranks: dict | None = None,
             text: str = "some passage text", title: str = "", score: float = 1.0, sigmoid: float | None = None,
             language: Language = EN, truncated: bool = False) -> Hit:
    return Hit(passage_id, doc_id or passage_id.split("#")[0], rank, score, language, text, title,
               ranks=ranks or {}, sigmoid=sigmoid, truncated=truncated)


def make_stage(name: str, hits: list[Hit], **fields) -> StageResult:
    return StageResult(name, tuple(hits), fields.pop("seconds", 0.0123), fields.pop("model", f"{name}-model"),
                       **fields)


def make_result(stages: list[StageResult], *, query: str = "query", candidates_from: str = "hybrid",
                rerank_depth: int = 20, language: Language = EN) -> SearchResult:
    return SearchResult(query, language, {stage.stage: stage for stage in stages}, candidates_from, rerank_depth)


def ranked(*ids: str) -> list[Hit]:
    return [make_hit(passage_id, rank) for rank, passage_id in enumerate(ids, start=1)]
