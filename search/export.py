"""Plain forms of engine results: JSON-ready dicts for the CLI's --json and the app's API, and CSV.

Both carry the comparison of the stages (`search.compare`): per reranked hit its movement against
each first stage, the retrievers that found it and whether it was lifted; per pair of stages the
top-k overlap (JSON only). Each reranked list also carries its "no good answer" line
(`search.answerability`): the threshold, where it came from and how many hits reach it (JSON), and
whether each hit does (CSV). With further rerankers (rerank-b, rerank-c, …) their hits also say how they
moved against the first (`versus_a`), and the comparison holds each one's `agreement` with the first.
"""

from __future__ import annotations

import csv
import io
import re

from . import answerability
from .answerability import Scale, ScoreLine
from .compare import Agreement, Comparison, Movement, RerankedHit, StageOverlap, compare
from .config import LineSetting
from .pipeline import BuildReport
from .stages import FIRST_STAGES, RERANK, is_rerank, ordered, rerank_stages
from .types import Hit, SearchResult, StageResult


def csv_columns(stage_names: tuple[str, ...]) -> tuple[str, ...]:
    """The CSV header for a result with these stages: a ``rank_in_<stage>`` column per stage (the first
    stages and at least two rerankers, so files of one view stay comparable)."""
    return ("query", "stage", "rank", "passage_id", "doc_id", "score", "sigmoid", "language",
            "language_probability", *(f"rank_in_{stage}" for stage in stage_names),
            *(f"movement_from_{stage}" for stage in FIRST_STAGES), "found_by", "lifted", "versus_a", "reaches_line",
            "title", "text")


CSV_STAGES = (*FIRST_STAGES, *rerank_stages(2))
CSV_COLUMNS = csv_columns(CSV_STAGES)
# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def hit_to_dict(hit: Hit, reranked: RerankedHit | None = None) -> dict[str, object]:
    """One hit as JSON-ready values; `ranks` holds its rank in each other stage (None: not returned).
    With `reranked` (a rerank hit's comparison) it also has `movements`, `found_by` and `lifted`."""
    fields: dict[str, object] = {
        "rank": hit.rank, "passage_id": hit.passage_id, "doc_id": hit.doc_id, "score": hit.score,
        "sigmoid": hit.sigmoid, "truncated": hit.truncated, "language": hit.language.code,
        "language_group": hit.language.group, "language_probability": hit.language.probability,
        "title": hit.title, "text": hit.text, "ranks": dict(hit.ranks),
    }
    if reranked is not None:
        fields.update(movements=[movement_to_dict(move) for move in reranked.movements],
                      found_by=list(reranked.found_by), lifted=reranked.lifted)
        if reranked.versus_a is not None:
            fields["versus_a"] = movement_to_dict(reranked.versus_a)
    return fields


def movement_to_dict(move: Movement) -> dict[str, object]:
    """``{"against", "kind", "before", "after", "text"}``: e.g. up from bm25 #8 to #2, "↑6 from BM25 #8"."""
    return {"against": move.against, "kind": move.kind, "before": move.before, "after": move.after,
            "text": move.text}


def overlap_to_dict(pair: StageOverlap) -> dict[str, object]:
    """``{"stages": [first, second], "k", "shared", "jaccard"}``."""
    return {"stages": [pair.first, pair.second], "k": pair.k, "shared": pair.shared, "jaccard": pair.jaccard}


def agreement_to_dict(agreement: Agreement) -> dict[str, object]:
    """``{"stages": [first, second], "k", "shared", "jaccard", "kendall_tau", "candidates"}``."""
    return {"stages": [agreement.first, agreement.second], "k": agreement.k, "shared": agreement.shared,
            "jaccard": agreement.jaccard, "kendall_tau": agreement.kendall_tau, "candidates": agreement.candidates}


def line_to_dict(line: ScoreLine) -> dict[str, object]:
    """``{"threshold", "scale", "source", "calibrated", "reached", "listed"}``: e.g. 0.84 on the raw score,
    the model's measured default, not calibrated, reached by 2 of the 10 hits listed (0: no good answer)."""
    return {"threshold": line.threshold, "scale": line.scale, "source": line.source,
            "calibrated": line.calibrated, "reached": line.reached, "listed": line.listed}


def stage_to_dict(stage: StageResult, k: int | None = None, comparison: Comparison | None = None, *,
                  line_setting: LineSetting = "default", score_view: Scale = "raw") -> dict[str, object]:
    """A stage's model, timing, notes and its top `k` hits (all when k is None); rerank hits carry
    their part of `comparison` when it is given, and a reranked stage its `score_line` (None: no line)."""
    hits = stage.hits if k is None else stage.hits[:k]
    reranked = _reranked_by_id(comparison, stage.stage)
    fields: dict[str, object] = {
        "model": stage.model, "seconds": stage.seconds, "note": stage.note or None, "error": stage.error,
        "pairs_per_second": stage.pairs_per_second,
        "hits": [hit_to_dict(hit, reranked.get(hit.passage_id)) for hit in hits],
    }
    if is_rerank(stage.stage):
        line = answerability.score_line(stage, line_setting, score_view=score_view, hits=hits)
        fields["score_line"] = line_to_dict(line) if line is not None else None
    return fields


def result_to_dict(result: SearchResult, k: int | None = None, *, score_line: LineSetting = "default",
                   score_view: Scale = "raw") -> dict[str, object]:
    """Every stage of a search, in stage order, and how the stages compare at `k`.

    `comparison` holds k and the overlap of each pair of stages that ran; each reranked hit holds its
    movements, `found_by` and `lifted`; each reranked stage its line (`score_line`, on the `score_view`
    scale). With k None every hit is given, and "top-k" means every hit returned (k = the longest stage's
    length).
    """
    comparison = compare(result, comparison_depth(result, k))
    return {
        "query": result.query,
        "query_language": {"code": result.query_language.code, "group": result.query_language.group,
                           "probability": result.query_language.probability},
        "candidates_from": result.candidates_from,
        "rerank_depth": result.rerank_depth,
        "stages": {name: stage_to_dict(stage, k, comparison, line_setting=score_line, score_view=score_view)
                   for name, stage in result.stages.items()},
        "comparison": {"k": comparison.k, "overlap": [overlap_to_dict(pair) for pair in comparison.overlaps],
                       **({"agreements": [agreement_to_dict(one) for one in comparison.agreements]}
                          if comparison.agreements else {})},
    }


def report_to_dict(report: BuildReport) -> dict[str, object]:
    """What a build did, with problems as ``{"source", "line", "message", "skipped"}`` records and the passages
    per file as ``{"source", "passages", "documents"}`` records (`BuildReport.to_json`)."""
    return report.to_json()


def results_to_csv(result: SearchResult, k: int | None = None, *, score_line: LineSetting = "default",
                   score_view: Scale = "raw") -> str:
    """CSV text with a header row (CSV_COLUMNS) and one row per (stage, hit), stages in order, each
    stage's top `k` hits (all when k is None). ``rank_in_<stage>`` is the hit's rank in that stage,
    its own included, blank where that stage did not return it; `sigmoid` is blank outside rerank.
    Rerank rows also hold ``movement_from_<first stage>`` (up, down, same or new; blank when that
    stage did not run), `found_by` (``bm25 dense``, space-separated) and `lifted` (true/false),
    compared at `k` as in `result_to_dict`; rows of a further reranker (rerank-b, …) also hold
    `versus_a`, how far it moved the passage against the first, the JSON's ``versus_a`` text
    ("↑3 vs A", "↓1 vs A", "= A"; blank where A did not rank it); rerank rows also hold
    `reaches_line` (true/false: the hit's score reaches the stage's "no good answer" line; blank without
    a line). Fields holding commas, quotes or line
    breaks are quoted (RFC 4180, ``\\r\\n`` row ends), and every cell is passed through `neutralise_cell`, so a passage
    such as ``=HYPERLINK(...)`` opens as text in a spreadsheet."""
    comparison = compare(result, comparison_depth(result, k))
    names = ordered([*CSV_STAGES, *result.stages])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_columns(names))
    for name, stage in result.stages.items():
        hits = stage.hits if k is None else stage.hits[:k]
        line = answerability.score_line(stage, score_line, score_view=score_view, hits=hits)
        for position, hit in enumerate(hits):
            ranks = {**hit.ranks, name: hit.rank}
            compared = _reranked_by_id(comparison, name).get(hit.passage_id)
            writer.writerow(neutralise_cell(cell) for cell in [
                result.query, name, hit.rank, hit.passage_id, hit.doc_id, hit.score,
                "" if hit.sigmoid is None else hit.sigmoid, hit.language.code, hit.language.probability,
                *("" if ranks.get(other) is None else ranks[other] for other in names),
                *_comparison_cells(compared), "" if line is None else str(position < line.reached).lower(),
                hit.title, hit.text,
            ])
    return buffer.getvalue()


def neutralise_cell(cell: object) -> object:
    """Return a CSV cell a spreadsheet will not run as a formula: text starting with ``= + - @``, a tab
    or a carriage return gets a leading single quote (OWASP's advice on CSV injection); plain numbers,
    negative ones included, stay numbers.

    >>> neutralise_cell("=1+1"), neutralise_cell("-2+3+cmd|' /C calc'!A0"), neutralise_cell("-0.25")
    ("'=1+1", "'-2+3+cmd|' /C calc'!A0", '-0.25')
    """
    text = cell if isinstance(cell, str) else str(cell)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return cell


def comparison_depth(result: SearchResult, k: int | None) -> int:
    """The k that comparisons use: `k`, or when it is None the longest stage's length (at least 1)."""
    if k is not None:
        return k
    return max((len(stage.hits) for stage in result.stages.values()), default=1) or 1


def _reranked_by_id(comparison: Comparison | None, stage: str = RERANK) -> dict[str, RerankedHit]:
    if comparison is None:
        return {}
    return {hit.passage_id: hit for hit in comparison.reranked.get(stage, ())}


def _comparison_cells(compared: RerankedHit | None) -> list[str]:
    if compared is None:
        return [""] * (len(FIRST_STAGES) + 3)
    kinds = {move.against: move.kind for move in compared.movements}
    return [*(kinds.get(stage, "") for stage in FIRST_STAGES), " ".join(compared.found_by),
            "true" if compared.lifted else "false", "" if compared.versus_a is None else compared.versus_a.text]
