"""The frozen records that cross module boundaries: documents, passages, hits and stage results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

StageName = str  # a name of the stage registry (`search.stages`): bm25, dense, hybrid, rerank, rerank-b, …
FirstStage = Literal["bm25", "dense", "hybrid"]


@dataclass(frozen=True)
class Document:
    """One document as read from a file: `source` is the file (``a.zip!inner/b.txt`` inside archives)."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""


@dataclass(frozen=True)
class Problem:
    """Something that was skipped or repaired while reading, with where it happened and why."""

    source: str
    message: str
    line: int | None = None  # 1-based line, row or page, when the problem has one
    skipped: bool = True  # False: a warning only, nothing was lost (e.g. a duplicate id renamed)

    def __str__(self) -> str:
        where = f"{self.source}, line {self.line}" if self.line is not None else self.source
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ReadResult:
    """Documents read from one or more paths, with every problem met on the way."""

    documents: tuple[Document, ...]
    problems: tuple[Problem, ...] = ()
    files_read: int = 0


@dataclass(frozen=True)
class Language:
    """A detected language: `code` as langdetect gives it (``zh-cn``), `group` for display (``zh``)."""

    code: str
    group: str
    probability: float

    @property
    def is_known(self) -> bool:
        return self.code != "unknown"


UNKNOWN_LANGUAGE = Language("unknown", "unknown", 0.0)


@dataclass(frozen=True)
class Passage:
    """A window of a document, the unit every stage ranks.

    `index` is the passage's position within its document; `start`/`end` are character offsets
    into the document text.
    """

    passage_id: str
    doc_id: str
    index: int
    text: str
    title: str = ""
    source: str = ""
    start: int = 0
    end: int = 0
    language: Language = UNKNOWN_LANGUAGE


@dataclass(frozen=True)
class Hit:
    """A passage ranked by one stage. `ranks` maps every other stage to this passage's rank there
    (1-based), or None when that stage did not return it."""

    passage_id: str
    doc_id: str
    rank: int
    score: float
    language: Language
    text: str
    title: str = ""
    # Compared but not hashed: equal hits have equal hashes, and a dict can't be hashed.
    ranks: dict[str, int | None] = field(default_factory=dict, hash=False)
    sigmoid: float | None = None  # rerank stage only: sigmoid of the raw logit
    truncated: bool | None = False  # rerank stage only: the passage was cut to fit the model (None: unknown)


@dataclass(frozen=True)
class StageResult:
    """One stage's ranked hits for a query, the model that produced them and how long it took."""

    stage: StageName
    hits: tuple[Hit, ...]
    seconds: float
    model: str = ""
    note: str = ""  # e.g. why a stage fell back or could not run
    pairs_per_second: float | None = None  # rerank stage only
    error: str | None = None  # the stage could not run; `hits` is empty
    model_id: str = ""  # rerank stage only: the id of the reranker that ran (a fallback's own id)


@dataclass(frozen=True)
class SearchResult:
    """Every stage's result for one query, in stage order: bm25, dense, hybrid, then each reranker's."""

    query: str
    query_language: Language
    stages: dict[str, StageResult] = field(hash=False)  # compared, not hashed (see Hit.ranks)
    candidates_from: FirstStage = "hybrid"
    rerank_depth: int = 0


class Scored(NamedTuple):
    """A retriever's answer for one passage: its position in the corpus' passage list and its score."""

    index: int
    score: float
