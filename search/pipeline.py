"""One pipeline: corpus -> passages -> languages -> BM25 and dense indexes -> stages -> results.

`build()` turns files into an `Index`; `Index.retrieve()` runs the first stages (BM25, dense, hybrid)
and `Index.rerank()` adds the cross-encoder stage, so a UI can show the first stages before the slow one
(with progress, cancellation and `Index.expected_rerank_seconds` to say how long it will take).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import analysis
from .bm25 import BM25Index
from .dense import DenseIndex
from .fusion import DEFAULT_FUSION, fuse, fusion_label, hybrid_weights
from .inference import Loaded, ProgressFn, Reranker, RerankerUnavailable, StopFn, TextEncoder
from .language import AUTO_LANGID, LANGID_ENV, detect_language, detect_languages, load_detector
from .loading import AUTO_BACKEND, BACKEND_ENV, TEI_URL_ENV, load_dense_encoder, load_encoder, load_reranker
from .models import (
    AUTO_RERANKER,
    DEFAULT_DENSE_MODEL,
    DENSE_ENV,
    DEVICE_ENV,
    RERANKER_ENV,
    choose_device,
    choose_reranker,
)
from .passages import split_documents
from .reading import read_paths
from .score_cache import CachedReranker
from .types import (
    COMPARE_STAGE,
    FIRST_STAGES,
    FirstStage,
    Hit,
    Language,
    Passage,
    Problem,
    ReadResult,
    Scored,
    SearchResult,
    StageResult,
)

logger = logging.getLogger(__name__)

INDEX_FORMAT = 1
CACHE_ENV = "SEARCH_CACHE_DIR"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "multilingual-rerank-explorer" / "indexes"
MAX_K = 1000
MAX_RERANK_DEPTH = 1000
BUILD_STEPS = ("read", "languages", "bm25", "embeddings")
MAX_PASSAGES_ENV = "SEARCH_MAX_PASSAGES"
# A free 2-vCPU Space embeds roughly 50 passages/s with a small encoder: 20,000 passages is about 7 minutes.
DEFAULT_MAX_PASSAGES = 20_000
BM25_LABEL = "BM25 (rank-bm25, language-aware analysis)"
# From this many passages in the query's language on, BM25's per-language document frequencies, not the
# stopword list, weigh the query's stopwords in that language (docs/ranking.md: XQuAD and the sample).
STOPWORD_STATISTICS_PASSAGES = 100

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(step, done, total)`` with a step of BUILD_STEPS."""


@dataclass(frozen=True)
class Settings:
    """What an index is built with. Model fields take a Hub id or a local folder; `backend` is what runs
    the models (one of `search.loading.BACKENDS`, ``"auto"`` for the best available); `tei_url` is the
    TEI endpoint (or endpoints, comma-separated) of ``backend="tei"`` ("" for $SEARCH_TEI_URL).
    `compare_reranker_model` is an optional second reranker ("" for none) that reranks the same
    candidates as the stage rerank-b, run by `compare_backend` ("" for the same backend as the first)."""

    window: int = 200
    overlap: int = 40
    dense_model: str = DEFAULT_DENSE_MODEL
    reranker_model: str = AUTO_RERANKER
    device: str = "auto"
    text_column: str | None = None
    index_titles: bool = True
    langid: str = AUTO_LANGID  # the language detector: auto, fasttext or langdetect (see search.language)
    backend: str = AUTO_BACKEND  # the inference backend of both models (see search.loading)
    tei_url: str = ""  # where backend "tei" finds its models (see search.backends.tei)
    compare_reranker_model: str = ""  # reranker B, "compare with" ("": none)
    compare_backend: str = ""  # what runs reranker B ("": `backend`)
    bm25_statistics: str = "language"  # BM25 document frequencies per passage language, or "corpus" (search.bm25)
    stopwords: bool = True  # drop the query's stopwords before BM25 and highlighting (search.analysis)
    fusion: str = DEFAULT_FUSION  # how the hybrid stage fuses BM25 and dense: relative-score or rrf (search.fusion)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from $SEARCH_DENSE_MODEL, $SEARCH_RERANKER_MODEL, $SEARCH_DEVICE, $SEARCH_LANGID,
        $SEARCH_BACKEND and $SEARCH_TEI_URL, then `overrides` (None values are ignored)."""
        values: dict[str, object] = {}
        for name, variable in (("dense_model", DENSE_ENV), ("reranker_model", RERANKER_ENV), ("device", DEVICE_ENV),
                               ("langid", LANGID_ENV), ("backend", BACKEND_ENV), ("tei_url", TEI_URL_ENV)):
            if os.environ.get(variable):
                values[name] = os.environ[variable]
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]


class BuildCancelled(Exception):
    """`build()` stopped because its `should_stop` said so (the page was closed or the user cancelled)."""


def max_passages_from_env(default: int | None = DEFAULT_MAX_PASSAGES) -> int | None:
    """The operator's passage limit from $SEARCH_MAX_PASSAGES (0 or unset with no default: no limit).

    Raises ValueError naming the variable when it is not a whole number.
    """
    value = os.environ.get(MAX_PASSAGES_ENV, "").strip()
    if not value:
        return default
    try:
        limit = int(value)
    except ValueError:
        raise ValueError(f"{MAX_PASSAGES_ENV}={value!r} is not a whole number; set it to a passage count such as "
                         f"{DEFAULT_MAX_PASSAGES}, or 0 for no limit") from None
    return limit if limit > 0 else None


@dataclass(frozen=True)
class BuildReport:
    """What `build()` did: counts, what was skipped and why, languages, models and time per step."""

    documents: int
    passages: int
    files_read: int
    problems: tuple[Problem, ...]
    languages: dict[str, int]  # language group -> passages, most common first
    dense_model: str  # the label of the model that embedded the passages
    dense_fallback_reason: str | None
    device: str
    timings_s: dict[str, float]
    index_key: str
    reused: bool = False

    @property
    def skipped(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.skipped)


class Index:
    """A built corpus: passages with their languages, a BM25 index and a dense index.

    Immutable after construction except for the lazily loaded reranker, so one Index may serve
    several threads. Models are shared between indexes through the encoder and reranker caches.
    """

    def __init__(self, passages: Sequence[Passage], passage_terms: Sequence[Sequence[str]], dense: DenseIndex,
                 encoder: Loaded[TextEncoder], settings: Settings, report: BuildReport) -> None:
        self.passages = tuple(passages)
        self.passage_terms = [list(terms) for terms in passage_terms]
        self.bm25 = BM25Index.build(self.passage_terms, languages=(
            [passage.language.group for passage in self.passages] if settings.bm25_statistics == "language" else None))
        self.dense = dense
        self.encoder = encoder
        self.settings = settings
        self.report = report
        self.languages = frozenset(report.languages)
        self._reranker: Loaded[Reranker] | None = None
        self._compare_reranker: Loaded[Reranker] | None = None
        self._reranker_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.passages)

    # -- querying ---------------------------------------------------------------------------------

    def retrieve(self, query: str, *, k: int = 10, rerank_depth: int = 20, candidates_from: FirstStage = "hybrid",
                 stages: Collection[str] = FIRST_STAGES) -> SearchResult:
        """Run the first stages (BM25, dense, hybrid: their fusion, `Settings.fusion`) for `query`; each returns
        max(k, rerank_depth) hits.

        `stages` limits which run (hybrid needs both others; `candidates_from` always runs), which saves
        the query embedding when only BM25 is wanted. When the dense model fails on the query (a remote
        endpoint that stopped answering), dense and hybrid come back with `error` set and BM25 still
        answers. Raises ValueError for an empty query or a k / rerank_depth out of range.
        """
        query = query.strip()
        if not query:
            raise ValueError("the query is empty; type a question or some keywords")
        self._check_depths(k, rerank_depth, candidates_from)
        wanted = set(stages) | ({candidates_from} if rerank_depth else set())
        if "hybrid" in wanted:
            wanted |= {"bm25", "dense"}
        depth = min(max(k, rerank_depth), len(self))
        query_language = detect_language(query, self.settings.langid)
        label = self.encoder.model.label
        dense_note = self.encoder.fallback_reason or ""
        ranked: dict[str, StageResult] = {}
        if "bm25" in wanted:
            started = time.perf_counter()
            bm25_hits = self.bm25.search(self._query_terms(query, query_language), depth)
            ranked["bm25"] = self._stage("bm25", bm25_hits, time.perf_counter() - started, BM25_LABEL)
        dense_error: str | None = None
        if "dense" in wanted:
            started = time.perf_counter()
            try:
                query_vector = self.encoder.model.embed([query], is_query=True)[0]
            except (ValueError, OSError) as error:  # e.g. a remote encoder's endpoint that stopped answering
                dense_error = f"the dense model could not embed the query: {error}"
                logger.warning("%s", dense_error)
                ranked["dense"] = StageResult("dense", (), time.perf_counter() - started, label, dense_note,
                                              error=dense_error)
            else:
                dense_hits = self.dense.search(query_vector, depth)
                ranked["dense"] = self._stage("dense", dense_hits, time.perf_counter() - started, label,
                                              dense_note)
        if "hybrid" in wanted:
            weights = hybrid_weights(self.settings.fusion, query_language.group, self.report.languages)
            fused_label = fusion_label(self.settings.fusion, ("BM25", label), weights)
            if dense_error is not None:
                ranked["hybrid"] = StageResult("hybrid", (), 0.0, fused_label, dense_note,
                                               error=f"needs the dense stage, which failed ({dense_error})")
            else:
                started = time.perf_counter()
                hybrid_hits = fuse([bm25_hits, dense_hits], self.settings.fusion, weights=weights, limit=depth)
                ranked["hybrid"] = self._stage("hybrid", hybrid_hits, time.perf_counter() - started, fused_label,
                                               dense_note)
        return SearchResult(query, query_language, _cross_ranked(ranked), candidates_from, rerank_depth)

    def rerank(self, result: SearchResult, reranker: Loaded[Reranker] | None = None, *,
               progress: ProgressFn | None = None, should_stop: StopFn | None = None,
               stage: str = "rerank") -> SearchResult:
        """Add the rerank stage: the top `result.rerank_depth` candidates of `result.candidates_from`,
        rescored by the reranker. A reranker that can't be loaded gives a stage with `error` set.
        With `stage="rerank-b"` the same candidates are rescored by the second reranker
        (`compare_reranker`) as the stage rerank-b; raises ValueError when none is set.

        `progress(done_pairs, total_pairs)` and `should_stop()` go to the reranker's `score`: pairs found
        in the score cache are reported done at once, then progress follows every scored batch;
        `should_stop` is polled before every batch and while another rerank runs, and raises
        `inference.RerankCancelled` (within one batch; the pairs scored so far stay cached).
        The stage's `pairs_per_second` is the reranker's measured speed on this machine (cached pairs
        excluded; see `score_cache.CachedReranker.throughput`), or pairs over seconds for a reranker
        without a meter.
        """
        name, model_setting = self._rerank_stage(stage)
        if name == COMPARE_STAGE and reranker is None and not self.has_compare_reranker:
            self._loaded_compare_reranker()  # raises ValueError: no second reranker is set
        source = result.stages[result.candidates_from]
        if source.error:
            failed = StageResult(name, (), 0.0, model_setting,
                                 error=f"no candidates to rerank: the {result.candidates_from} stage failed "
                                       f"({source.error})")
            return replace(result, stages={**result.stages, name: failed})
        candidates = source.hits[: result.rerank_depth]
        try:
            loaded = reranker or (self.reranker() if name == "rerank" else self._loaded_compare_reranker())
        except ValueError as error:
            failed = StageResult(name, (), 0.0, model_setting, error=str(error))
            return replace(result, stages={**result.stages, name: failed})
        started = time.perf_counter()
        try:
            scores = loaded.model.score(result.query, [self._rerank_text(hit) for hit in candidates],
                                        progress=progress, should_stop=should_stop)
        except RerankerUnavailable as error:  # e.g. a remote endpoint that stopped answering
            failed = StageResult(name, (), time.perf_counter() - started, loaded.model.label, error=str(error))
            return replace(result, stages={**result.stages, name: failed})
        seconds = time.perf_counter() - started
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i].raw, i))
        hits = tuple(
            replace(candidates[i], rank=rank, score=scores[i].raw, sigmoid=scores[i].sigmoid,
                    truncated=scores[i].truncated)
            for rank, i in enumerate(order, start=1)
        )
        if isinstance(loaded.model, CachedReranker):
            pairs_per_second = loaded.model.throughput().pairs_per_second if candidates else None
        else:
            pairs_per_second = len(candidates) / seconds if candidates and seconds > 0 else None
        reranked = StageResult(
            name, hits, seconds, loaded.model.label,  # type: ignore[arg-type]
            note=loaded.fallback_reason or "",
            pairs_per_second=pairs_per_second,
        )
        return replace(result, stages=_cross_ranked({**result.stages, name: reranked}))

    def expected_rerank_seconds(self, result: SearchResult, rerank_depth: int | None = None, *,
                                stage: str = "rerank") -> float | None:
        """How long `rerank` should take for `result` at `rerank_depth` (default `result.rerank_depth`):
        the pairs not in the score cache times the reranker's measured seconds per pair (of the second
        reranker with `stage="rerank-b"`; None when none is set).

        Candidates beyond those `result` retrieved count as uncached. 0.0 for depth 0 or when every pair
        is cached; otherwise None when the reranker is not loaded yet (this never loads it) or has not
        scored anything to measure yet. Raises ValueError for a depth out of range.

        >>> index.expected_rerank_seconds(index.retrieve("tea", rerank_depth=20))  # doctest: +SKIP
        6.2
        """
        depth = result.rerank_depth if rerank_depth is None else rerank_depth
        if not 0 <= depth <= MAX_RERANK_DEPTH:
            raise ValueError(f"rerank_depth={depth} is out of range; use 0 <= rerank_depth <= {MAX_RERANK_DEPTH}")
        depth = min(depth, len(self))
        loaded = self._reranker if self._rerank_stage(stage)[0] == "rerank" else self._compare_reranker
        if depth == 0:
            return 0.0
        if loaded is None or not isinstance(loaded.model, CachedReranker):
            return None
        candidates = result.stages[result.candidates_from].hits[:depth]
        pairs = loaded.model.uncached(result.query, [self._rerank_text(hit) for hit in candidates])
        pairs += depth - len(candidates)
        return 0.0 if pairs == 0 else loaded.model.expected_seconds(pairs)

    def search(self, query: str, *, k: int = 10, rerank_depth: int = 20,
               candidates_from: FirstStage = "hybrid") -> SearchResult:
        """Every stage for `query`: BM25, dense, hybrid and, when rerank_depth > 0, rerank (and rerank-b
        after it, when a second reranker is set)."""
        result = self.retrieve(query, k=k, rerank_depth=rerank_depth, candidates_from=candidates_from)
        if rerank_depth <= 0:
            return result
        result = self.rerank(result)
        return self.rerank(result, stage=COMPARE_STAGE) if self.has_compare_reranker else result

    def reranker(self) -> Loaded[Reranker]:
        """Load (once) the reranker these settings name; ``auto`` is resolved from the corpus' languages.

        Falls back to late interaction when the cross-encoder can't be loaded (see `fallback_reason`).
        """
        with self._reranker_lock:
            if self._reranker is None:
                device = choose_device(self.settings.device)
                model_id = choose_reranker(self.settings.reranker_model, self.languages,
                                           has_gpu=device.startswith("cuda"))
                self._reranker = load_reranker(model_id, device, backend=self.settings.backend,
                                               endpoint=self.settings.tei_url or None)
            return self._reranker

    @property
    def has_compare_reranker(self) -> bool:
        """Whether a second reranker ("compare with", the stage rerank-b) is set."""
        return bool(self.settings.compare_reranker_model.strip())

    def compare_reranker(self) -> Loaded[Reranker] | None:
        """Load (once) the second reranker (`Settings.compare_reranker_model`, run by `compare_backend` or
        else `backend`), as `reranker` loads the first, falling back alike; None when none is set."""
        if not self.has_compare_reranker:
            return None
        with self._reranker_lock:
            if self._compare_reranker is None:
                device = choose_device(self.settings.device)
                model_id = choose_reranker(self.settings.compare_reranker_model.strip(), self.languages,
                                           has_gpu=device.startswith("cuda"))
                self._compare_reranker = load_reranker(
                    model_id, device, backend=self.settings.compare_backend.strip() or self.settings.backend,
                    endpoint=self.settings.tei_url or None)
            return self._compare_reranker

    def _loaded_compare_reranker(self) -> Loaded[Reranker]:
        loaded = self.compare_reranker()
        if loaded is None:
            raise ValueError("no second reranker is set; choose one under 'Compare with' in the model panel "
                             "(--compare-reranker-model on the command line)")
        return loaded

    def _rerank_stage(self, stage: str) -> tuple[str, str]:
        # The stage's name and the model setting that names its reranker.
        if stage == "rerank":
            return "rerank", self.settings.reranker_model
        if stage == COMPARE_STAGE:
            return COMPARE_STAGE, self.settings.compare_reranker_model
        raise ValueError(f"stage={stage!r} is not a rerank stage; use 'rerank' or {COMPARE_STAGE!r}")

    def _check_depths(self, k: int, rerank_depth: int, candidates_from: str) -> None:
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k={k} is out of range; use 1 <= k <= {MAX_K}")
        if not 0 <= rerank_depth <= MAX_RERANK_DEPTH:
            raise ValueError(f"rerank_depth={rerank_depth} is out of range; use 0 <= rerank_depth <= "
                             f"{MAX_RERANK_DEPTH} (0 turns reranking off)")
        if candidates_from not in FIRST_STAGES:
            raise ValueError(f"candidates_from={candidates_from!r} is not a first stage; use one of "
                             f"{', '.join(FIRST_STAGES)}")

    def _query_terms(self, query: str, language: Language) -> dict[str, list[str]]:
        # Per-language statistics weigh the query's own stopwords once its language has enough passages;
        # below that, "far" in 1 of 11 English passages looks as rare as a name, and the list decides.
        own_stopwords = (self.settings.bm25_statistics != "language"
                         or self.report.languages.get(language.group, 0) < STOPWORD_STATISTICS_PASSAGES)
        return analysis.query_terms(query, language.group, self.languages, stopwords=self.settings.stopwords,
                                    own_stopwords=own_stopwords)

    def _stage(self, stage: str, scored: Sequence[Scored], seconds: float, model: str,
               note: str = "") -> StageResult:
        hits = tuple(self._hit(item, rank) for rank, item in enumerate(scored, start=1))
        return StageResult(stage, hits, seconds, model, note)  # type: ignore[arg-type]

    def _hit(self, item: Scored, rank: int) -> Hit:
        passage = self.passages[item.index]
        return Hit(passage.passage_id, passage.doc_id, rank, item.score, passage.language, passage.text,
                   passage.title)

    def _rerank_text(self, hit: Hit) -> str:
        return f"{hit.title}\n{hit.text}" if self.settings.index_titles and hit.title else hit.text

    # -- persistence ------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the index to `folder` (created if needed): manifest.json, passages.jsonl,
        terms.jsonl and embeddings.npy. Returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "passages.jsonl", "w", encoding="utf-8") as out:
            for passage in self.passages:
                out.write(json.dumps(asdict(passage), ensure_ascii=False) + "\n")
        with open(folder / "terms.jsonl", "w", encoding="utf-8") as out:
            for terms in self.passage_terms:
                out.write(json.dumps(terms, ensure_ascii=False) + "\n")
        np.save(folder / "embeddings.npy", self.dense.embeddings, allow_pickle=False)
        manifest = {
            "format": INDEX_FORMAT,
            "settings": asdict(self.settings),
            "dense_model_id": self.encoder.model.model_id,
            "report": {**asdict(self.report), "problems": [asdict(p) for p in self.report.problems]},  # see export
        }
        # Written last, so a folder with a manifest is always complete.
        (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: str | None = None, reranker_model: str | None = None,
             read: ReadResult | None = None, backend: str | None = None, tei_url: str | None = None,
             compare_reranker_model: str | None = None, compare_backend: str | None = None) -> Index:
        """Load an index written by `save`. Raises ValueError when `folder` holds no complete index.

        `device`, `reranker_model`, `backend`, `tei_url`, `compare_reranker_model` and `compare_backend`
        override the saved settings (none changes the index; "" turns the second reranker off); `read`
        replaces the saved reading report with a fresh one (used when a cached index is reused).
        """
        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise ValueError(f"{folder} holds no saved index (no manifest.json); build one with "
                             "`python -m search index PATH --out DIR`")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != INDEX_FORMAT:
            raise ValueError(f"{folder} was saved in index format {manifest.get('format')}, this version reads "
                             f"format {INDEX_FORMAT}; build the index again")
        settings = Settings(**manifest["settings"])
        settings = replace(settings, device=device or settings.device,
                           reranker_model=reranker_model or settings.reranker_model,
                           backend=backend or settings.backend,
                           tei_url=settings.tei_url if tei_url is None else tei_url,
                           compare_reranker_model=(settings.compare_reranker_model if compare_reranker_model is None
                                                   else compare_reranker_model),
                           compare_backend=settings.compare_backend if compare_backend is None else compare_backend)
        passages = []
        with open(folder / "passages.jsonl", encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                record["language"] = Language(**record["language"])
                passages.append(Passage(**record))
        with open(folder / "terms.jsonl", encoding="utf-8") as lines:
            passage_terms = [json.loads(line) for line in lines]
        embeddings = np.load(folder / "embeddings.npy", allow_pickle=False)
        fields = manifest["report"]
        report = BuildReport(**{**fields, "problems": tuple(Problem(**p) for p in fields["problems"])})
        if read is not None:
            report = replace(report, problems=read.problems, files_read=read.files_read, reused=True,
                             timings_s={})
        dense_id = manifest["dense_model_id"]
        encoder = Loaded(load_encoder(dense_id, settings.device, backend=settings.backend,
                                      endpoint=settings.tei_url or None),
                         settings.dense_model, report.dense_fallback_reason)
        if encoder.model.model_id != dense_id:  # e.g. a TEI endpoint serving another model
            raise ValueError(f"{folder} was indexed with the dense model {dense_id}, but the encoder loaded for "
                             f"it runs {encoder.model.model_id} ({encoder.model.label}), whose embeddings don't "
                             f"match the saved ones; point --tei-url or {TEI_URL_ENV} at an endpoint serving "
                             f"{dense_id}, use --backend torch, or build the index again with this model")
        if encoder.model.dimension != embeddings.shape[1]:
            raise ValueError(f"{folder}: the saved embeddings have {embeddings.shape[1]} dimensions but "
                             f"{dense_id} gives {encoder.model.dimension}; build the index again")
        return cls(passages, passage_terms, DenseIndex(embeddings), encoder, settings, report)


def query_terms(query: str, language: Language, corpus_languages: frozenset[str]) -> list[str]:
    """The terms BM25 matches for `query`, pooled over the languages it is analysed in, each once
    (`analysis.query_terms` gives them per language and says why)."""
    by_language = analysis.query_terms(query, language.group, corpus_languages)
    return list(dict.fromkeys(term for terms in by_language.values() for term in terms))


def build(source: Sequence[str | Path] | ReadResult, settings: Settings | None = None, *,
          progress: ProgressCallback | None = None, cache_dir: str | Path | None = None,
          names: Sequence[str] | None = None, max_passages: int | None = None,
          should_stop: Callable[[], bool] | None = None) -> Index:
    """Read `source` (paths, or documents already read), split, detect languages and build both indexes.

    When `cache_dir` is given, an index with the same passages, settings and dense model is loaded from
    there instead of being built again (`report.reused`), and a new one is saved there.
    `progress("embeddings", 0, n)` is reported before embedding starts, so a caller can show the passage
    count (and, from the following reports, the time left) before the long step.
    Raises ValueError when no passage could be read or there are more than `max_passages` passages (the
    message names $SEARCH_MAX_PASSAGES), and BuildCancelled, within one step's batch, once `should_stop()`
    is true.
    """
    settings = settings or Settings()
    stop = should_stop or (lambda: False)

    def report_progress(step: str, done: int, total: int) -> None:
        if stop():
            raise BuildCancelled(f"the build was cancelled during {step} ({done} of {total} done)")
        if progress is not None:
            progress(step, done, total)

    timings: dict[str, float] = {}

    started = time.perf_counter()
    report_progress("read", 0, 1)
    read = source if isinstance(source, ReadResult) else read_paths(
        source, text_column=settings.text_column, names=names)
    passages = list(split_documents(read.documents, window=settings.window, overlap=settings.overlap))
    timings["read"] = time.perf_counter() - started
    report_progress("read", 1, 1)
    if not passages:
        reasons = "; ".join(str(problem) for problem in read.problems[:10]) or "the input has no text"
        raise ValueError(f"no passage could be read ({reasons})")
    if max_passages is not None and len(passages) > max_passages:
        raise ValueError(
            f"the corpus has {len(passages):,} passages ({len(read.documents):,} documents); this server indexes "
            f"at most {max_passages:,} ({MAX_PASSAGES_ENV}). Upload fewer files, use a larger passage window, "
            f"or raise {MAX_PASSAGES_ENV} where you run the app.")

    encoder = load_dense_encoder(settings.dense_model, settings.device, backend=settings.backend,
                                 endpoint=settings.tei_url or None)
    key = index_key(passages, settings, encoder)
    if cache_dir is not None:
        cached = Path(cache_dir) / key
        if (cached / "manifest.json").is_file():
            try:
                index = Index.load(cached, device=settings.device, reranker_model=settings.reranker_model,
                                   read=read, backend=settings.backend, tei_url=settings.tei_url,
                                   compare_reranker_model=settings.compare_reranker_model,
                                   compare_backend=settings.compare_backend)
            except (ValueError, OSError, KeyError, TypeError, json.JSONDecodeError) as error:
                logger.warning("ignoring the unreadable cached index %s: %s", cached, error)
            else:
                index.report.timings_s["read"] = timings["read"]
                for step in BUILD_STEPS[1:]:
                    report_progress(step, 1, 1)
                return index

    started = time.perf_counter()
    languages: list[Language] = []
    chunk = 64
    for begin in range(0, len(passages), chunk):
        languages += detect_languages([p.text for p in passages[begin:begin + chunk]], settings.langid)
        report_progress("languages", len(languages), len(passages))
    passages = [replace(p, language=language) for p, language in zip(passages, languages, strict=True)]
    timings["languages"] = time.perf_counter() - started

    started = time.perf_counter()
    index_texts = [_index_text(p, settings) for p in passages]
    passage_terms = []
    for i, (text, passage) in enumerate(zip(index_texts, passages, strict=True), start=1):
        passage_terms.append(analysis.terms(text, passage.language.group))
        if i % 256 == 0 or i == len(passages):
            report_progress("bm25", i, len(passages))
    timings["bm25"] = time.perf_counter() - started

    started = time.perf_counter()
    report_progress("embeddings", 0, len(passages))
    dense = DenseIndex.build(encoder.model, index_texts,
                             progress=lambda done, total: report_progress("embeddings", done, total))
    timings["embeddings"] = time.perf_counter() - started

    counts = Counter(p.language.group for p in passages)
    report = BuildReport(
        documents=len(read.documents), passages=len(passages), files_read=read.files_read,
        problems=read.problems, languages=dict(counts.most_common()), dense_model=encoder.model.label,
        dense_fallback_reason=encoder.fallback_reason, device=encoder.model.device, timings_s=timings,
        index_key=key,
    )
    started = time.perf_counter()
    index = Index(passages, passage_terms, dense, encoder, settings, report)
    timings["bm25"] += time.perf_counter() - started
    if cache_dir is not None:
        try:
            index.save(Path(cache_dir) / key)
        except OSError as error:
            logger.warning("could not save the index to %s: %s", cache_dir, error)
    return index


def index_key(passages: Sequence[Passage], settings: Settings, encoder: Loaded[TextEncoder]) -> str:
    """A hash of everything an index depends on: passages, analysis settings, the language detector that
    answers for `settings.langid` and the dense model (and its backend, unless torch)."""
    digest = hashlib.sha256()
    header = {"format": INDEX_FORMAT, "analysis": analysis.ANALYSIS_VERSION, "window": settings.window,
              "overlap": settings.overlap, "titles": settings.index_titles, "dense": encoder.model.model_id,
              "langid": load_detector(settings.langid).name}
    if encoder.model.backend != "torch":  # int8 gives other embeddings; torch keeps the keys it always had
        header["dense_backend"] = encoder.model.backend
    digest.update(json.dumps(header, sort_keys=True).encode())
    for passage in passages:
        digest.update(json.dumps([passage.passage_id, passage.doc_id, passage.title, passage.text],
                                 ensure_ascii=False).encode())
    return digest.hexdigest()[:24]


def default_cache_dir() -> Path:
    """$SEARCH_CACHE_DIR, or ~/.cache/multilingual-rerank-explorer/indexes."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def _index_text(passage: Passage, settings: Settings) -> str:
    return f"{passage.title}\n{passage.text}" if settings.index_titles and passage.title else passage.text


def _cross_ranked(stages: dict[str, StageResult]) -> dict[str, StageResult]:
    """Give every hit its rank in each other stage (None where that stage did not return it)."""
    positions = {name: {hit.passage_id: hit.rank for hit in stage.hits} for name, stage in stages.items()}
    out = {}
    for name, stage in stages.items():
        hits = tuple(
            replace(hit, ranks={other: positions[other].get(hit.passage_id) for other in stages if other != name})
            for hit in stage.hits
        )
        out[name] = replace(stage, hits=hits)
    return out


