"""One pipeline: corpus -> passages -> languages -> BM25 and dense indexes -> stages -> results.

`build()` turns files into an `Index`; `Index.retrieve()` runs the first stages (BM25, dense, hybrid:
`search.retrievers`, in the order of the stage registry `search.stages`) and `Index.rerank()` adds one
reranker's stage, so a UI can show the first stages before the slow ones (with progress, cancellation and
`Index.expected_rerank_seconds` to say how long they will take). `Settings.rerankers` is a list: each
reranker reranks the same candidates as a stage of its own (``rerank``, ``rerank-b``, ``rerank-c``, …).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import analysis, config, estimates
from .bm25 import BM25Index
from .decoding import check_encoding
from .dense import DenseIndex
from .inference import (
    Loaded,
    MeasuredReranker,
    ProgressFn,
    RerankCancelled,
    Reranker,
    RerankerUnavailable,
    StopFn,
    TextEncoder,
)
from .language import detect_language, detect_languages, load_detector
from .loading import load_dense_encoder, load_encoder, load_reranker
from .models import choose_device, choose_reranker
from .passages import SourceCount, TooManyPassages, passages_per_source, split_documents
from .reading import check_text_column, read_paths
from .retrievers import BM25Retriever, DenseRetriever, HybridRetriever, QueryText, Retriever, StageFailed
from .retrievers import query_terms as query_terms
from .score_cache import measured
from .stages import FIRST_STAGES, MAX_RERANKERS, RERANK, rerank_stages, reranker_position
from .types import Hit, Language, Passage, Problem, ReadResult, Scored, SearchResult, StageResult

logger = logging.getLogger(__name__)

INDEX_FORMAT = 1
MAX_K = 1000
MAX_RERANK_DEPTH = 1000
BUILD_STEPS = ("read", "languages", "bm25", "embeddings")
BM25_LABEL = BM25Retriever.label

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(step, done, total)`` with a step of BUILD_STEPS."""


@dataclass(frozen=True)
class RerankerChoice:
    """One reranker of `Settings.rerankers`: a model (Hub id, local folder, ``auto``, ``late-interaction``…)
    and the backend that runs it ("" for the settings' `backend`)."""

    model: str
    backend: str = ""

    def __str__(self) -> str:
        return f"{self.model}@{self.backend}" if self.backend else self.model


def _choices(rerankers: Sequence[RerankerChoice | str | tuple[str, str]]) -> tuple[RerankerChoice, ...]:
    chosen = []
    for item in rerankers:
        if isinstance(item, str):
            item = RerankerChoice(item.strip())
        elif not isinstance(item, RerankerChoice):
            item = RerankerChoice(*item)
        chosen.append(RerankerChoice(item.model.strip(), item.backend.strip().lower()))
    return tuple(chosen)


@dataclass(frozen=True)
class Settings:
    """What an index is built with. Model fields take a Hub id or a local folder; `backend` is what runs
    the models (one of `search.loading.BACKENDS`, ``"auto"`` for the best available); `tei_url` is the TEI
    endpoint (or endpoints, comma-separated) of ``backend="tei"`` ("" for $SEARCH_TEI_URL).
    `rerankers` are the rerankers, each a stage of its own over the same candidates (`search.stages`):
    plain model ids or `RerankerChoice`s (model, backend). `text_column` is stripped, blank meaning None
    (found by name), and `encoding` made a codec name. Raises ValueError for no reranker, more than the
    registry names, a bad text column (`reading.check_text_column`) or an unknown encoding.

    >>> Settings(rerankers=("late-interaction", ("late-interaction-minilm", "int8"))).rerankers[1]
    RerankerChoice(model='late-interaction-minilm', backend='int8')
    """

    window: int = config.default("window")
    overlap: int = config.default("overlap")
    dense_model: str = config.default("dense_model")
    rerankers: tuple[RerankerChoice, ...] = field(default=(RerankerChoice("auto"),))
    device: str = config.default("device")
    text_column: str | None = None  # the CSV/TSV column or JSON key of the text, when not found by name (None, "")
    encoding: str | None = None  # the encoding of files with no BOM that are not UTF-8, instead of a guess
    index_titles: bool = True
    langid: str = config.default("langid")  # the language detector: auto, fasttext or langdetect (search.language)
    backend: str = config.default("backend")  # the inference backend of the models (see search.loading)
    tei_url: str = ""  # where backend "tei" finds its models (see search.backends.tei)
    bm25_statistics: str = config.default("bm25_statistics")  # per passage language, or "corpus" (search.bm25)
    stopwords: bool = config.default("stopwords")  # drop the query's stopwords before BM25 (search.analysis)
    fusion: str = config.default("fusion")  # how hybrid fuses BM25 and dense: relative-score or rrf (search.fusion)

    def __post_init__(self) -> None:
        chosen = _choices(self.rerankers)
        if not chosen or any(not choice.model for choice in chosen):
            raise ValueError("rerankers is empty; name at least one reranker (e.g. auto)")
        if len(chosen) > MAX_RERANKERS:
            raise ValueError(f"{len(chosen)} rerankers is more than {MAX_RERANKERS}; name fewer")
        object.__setattr__(self, "rerankers", chosen)
        if self.encoding is not None:
            object.__setattr__(self, "encoding", check_encoding(self.encoding))
        object.__setattr__(self, "text_column", check_text_column(self.text_column))

    @classmethod
    def from_config(cls, settings: config.Config | None = None, **overrides: object) -> Settings:
        """Settings from the configuration (`search.config.current()` by default: the environment read at
        start-up): every field that is also a setting there, then `overrides` (None values are ignored)."""
        settings = settings or config.current()
        values: dict[str, object] = {item.name: getattr(settings, item.name) for item in fields(cls)
                                     if item.name in config.OPTION}
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def rerank_stages(self) -> tuple[str, ...]:
        """The stage of each reranker, in order: rerank, rerank-b, …"""
        return rerank_stages(len(self.rerankers))

    def reranker_backend(self, position: int) -> str:
        """What runs the reranker at `position`: its own backend, else the settings' `backend`."""
        return self.rerankers[position].backend or self.backend


class BuildCancelled(Exception):
    """`build()` stopped because its `should_stop` said so (the page was closed or the user cancelled)."""


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
    per_source: tuple[SourceCount, ...] = ()  # passages and documents per file, the largest contributors first

    @property
    def skipped(self) -> tuple[Problem, ...]:
        return tuple(problem for problem in self.problems if problem.skipped)

    def to_json(self) -> dict[str, object]:
        """Every field as JSON values, problems as ``{"source", "line", "message", "skipped"}`` records and
        `per_source` as ``{"source", "passages", "documents"}`` records (what a saved index, the app's build
        JSON and the CLI write)."""
        return {**asdict(self), "problems": [asdict(problem) for problem in self.problems],
                "per_source": [item._asdict() for item in self.per_source]}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> BuildReport:
        """The report `to_json` wrote; `per_source` items may also be ``[source, passages, documents]`` arrays,
        as indexes saved before it wrote records have them."""
        return cls(**{**values, "problems": tuple(Problem(**problem) for problem in values["problems"]),
                      "per_source": tuple(SourceCount(**item) if isinstance(item, dict) else SourceCount(*item)
                                          for item in values.get("per_source", ()))})


class Index:
    """A built corpus: passages with their languages, a BM25 index and a dense index.

    Immutable after construction except for the lazily loaded rerankers, so one Index may serve
    several threads. Models are shared between indexes through the encoder and reranker caches.
    """

    def __init__(self, passages: Sequence[Passage], passage_terms: Sequence[Sequence[str]], dense: DenseIndex,
                 encoder: Loaded[TextEncoder], settings: Settings, report: BuildReport) -> None:
        self.passages = tuple(passages)
        # The callers' lists are kept, not copied: a copy is 8 bytes a term (160 MB at 100,000 passages of
        # 200 terms), and nothing changes them; only `save` reads them again.
        self.passage_terms = [terms if isinstance(terms, list) else list(terms) for terms in passage_terms]
        self.bm25 = BM25Index.build(self.passage_terms, languages=(
            [passage.language.group for passage in self.passages] if settings.bm25_statistics == "language" else None))
        self.dense = dense
        self.encoder = encoder
        self.settings = settings
        self.report = report
        self.languages = frozenset(report.languages)
        self.rerank_stages = settings.rerank_stages
        self._rerankers: list[Loaded[MeasuredReranker] | None] = [None] * len(settings.rerankers)
        self._reranker_lock = threading.Lock()
        note = encoder.fallback_reason or ""
        self.retrievers: dict[str, Retriever] = {
            retriever.name: retriever for retriever in (
                BM25Retriever(self.bm25, self.languages, report.languages, settings),
                DenseRetriever(self.dense, lambda: self.encoder.model, note),
                HybridRetriever(lambda: self.encoder.model.label, settings.fusion, report.languages, note),
            )}

    def __len__(self) -> int:
        return len(self.passages)

    # -- querying ---------------------------------------------------------------------------------

    def retrieve(self, query: str, *, k: int = config.default("k"),
                 rerank_depth: int = config.default("rerank_depth"),
                 candidates_from: str = config.default("candidates_from"),
                 stages: Collection[str] = FIRST_STAGES) -> SearchResult:
        """Run the first stages (BM25, dense, and hybrid: their fusion, `Settings.fusion`) for `query`; each
        returns max(k, rerank_depth) hits.

        `stages` limits which run (a stage's `needs` run too; `candidates_from` always runs; names of
        later stages are ignored), which saves
        the query embedding when only BM25 is wanted. When a stage fails on the query (a remote endpoint
        that stopped answering), it and the stages that need it come back with `error` set and the others
        still answer. Raises ValueError for an empty query or a k / rerank_depth out of range.
        """
        query = query.strip()
        if not query:
            raise ValueError("the query is empty; type a question or some keywords")
        self._check_depths(k, rerank_depth, candidates_from)
        wanted = self._with_needs({name for name in stages if name in self.retrievers}
                                  | ({candidates_from} if rerank_depth else set()))
        depth = min(max(k, rerank_depth), len(self))
        text = QueryText(query, detect_language(query, self.settings.langid))
        ranked: dict[str, StageResult] = {}
        scored: dict[str, Sequence[Scored]] = {}
        for name in (name for name in FIRST_STAGES if name in wanted):
            retriever = self.retrievers[name]
            failed = [need for need in retriever.needs if ranked[need].error]
            if failed:
                errors = "; ".join(f"{need}: {ranked[need].error}" for need in failed)
                ranked[name] = StageResult(name, (), 0.0, error=f"needs the {' and '.join(failed)} stage, which "
                                                              f"failed ({errors})")
                continue
            started = time.perf_counter()
            try:
                ranking = retriever.search(text, depth, scored)
            except StageFailed as error:
                logger.warning("%s", error)
                ranked[name] = StageResult(name, (), time.perf_counter() - started, error=str(error))
                continue
            scored[name] = ranking.scored
            ranked[name] = self._stage(name, ranking.scored, time.perf_counter() - started, ranking.model,
                                       ranking.note)
        return SearchResult(query, text.language, _cross_ranked(ranked), candidates_from, rerank_depth)

    def _with_needs(self, wanted: set[str]) -> set[str]:
        # Every stage a wanted one needs, transitively (hybrid needs bm25 and dense).
        pending = list(wanted)
        while pending:
            for need in self.retrievers[pending.pop()].needs:
                if need not in wanted:
                    wanted.add(need)
                    pending.append(need)
        return wanted

    def rerank(self, result: SearchResult, reranker: Loaded[Reranker] | None = None, *,
               progress: ProgressFn | None = None, should_stop: StopFn | None = None,
               stage: str = RERANK) -> SearchResult:
        """Add the rerank stage `stage` (rerank, rerank-b, …: the reranker at that position of
        `Settings.rerankers`, or `reranker` when given): the top `result.rerank_depth` candidates of
        `result.candidates_from`, rescored. A reranker that can't be loaded gives a stage with `error`
        set. Raises ValueError for a stage that names no reranker of these settings.

        `progress(done_pairs, total_pairs)` and `should_stop()` go to the reranker's `score`: pairs found
        in the score cache are reported done at once, then progress follows every scored batch;
        `should_stop` is polled before every batch and while another rerank runs, and raises
        `inference.RerankCancelled` (within one batch; the pairs scored so far stay cached).
        The stage's `pairs_per_second` is the reranker's measured speed on this machine (cached pairs
        excluded; see `score_cache.CachedReranker.throughput`).
        """
        position = self._position(stage)
        source = result.stages[result.candidates_from]
        if source.error:
            failed = StageResult(stage, (), 0.0, self.settings.rerankers[position].model,
                                 error=f"no candidates to rerank: the {result.candidates_from} stage failed "
                                       f"({source.error})")
            return replace(result, stages={**result.stages, stage: failed})
        candidates = source.hits[: result.rerank_depth]
        try:
            loaded = (Loaded(measured(reranker.model), reranker.requested, reranker.fallback_reason)
                      if reranker is not None else self.reranker(stage))
        except ValueError as error:
            failed = StageResult(stage, (), 0.0, self.settings.rerankers[position].model, error=str(error))
            return replace(result, stages={**result.stages, stage: failed})
        started = time.perf_counter()
        try:
            scores = loaded.model.score(result.query, [self._rerank_text(hit) for hit in candidates],
                                        progress=progress, should_stop=should_stop)
        except RerankerUnavailable as error:  # e.g. a remote endpoint that stopped answering
            failed = StageResult(stage, (), time.perf_counter() - started, loaded.model.label, error=str(error))
            return replace(result, stages={**result.stages, stage: failed})
        seconds = time.perf_counter() - started
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i].raw, i))
        hits = tuple(
            replace(candidates[i], rank=rank, score=scores[i].raw, sigmoid=scores[i].sigmoid,
                    truncated=scores[i].truncated)
            for rank, i in enumerate(order, start=1)
        )
        pairs_per_second = loaded.model.throughput().pairs_per_second if candidates else None
        reranked = StageResult(stage, hits, seconds, loaded.model.label, note=loaded.fallback_reason or "",
                               pairs_per_second=pairs_per_second, model_id=loaded.model.model_id)
        return replace(result, stages=_cross_ranked({**result.stages, stage: reranked}))

    def rerank_from_cache(self, result: SearchResult, stage: str = RERANK) -> SearchResult | None:
        """`result` with `stage` added when the score cache holds every pair it needs (the same query again,
        another k), without any model work; None when something would have to be scored, when the reranker
        is not loaded yet, or when reranking is off. The engine's answer to "can this be drawn at once?"."""
        if not result.rerank_depth or self.expected_rerank_seconds(result, stage=stage) != 0.0:
            return None
        try:
            return self.rerank(result, should_stop=lambda: True, stage=stage)
        except RerankCancelled:  # evicted meanwhile: it waits for the rerank queue like any other
            return None

    def expected_rerank_seconds(self, result: SearchResult | None, rerank_depth: int | None = None, *,
                                stage: str = RERANK) -> float | None:
        """How long `rerank` of `stage` should take for `result` at `rerank_depth` (default
        `result.rerank_depth`), counted by `estimates.rerank_seconds` from `rerank_work` as Evaluate's estimate
        counts a query: a cross-encoder by the pairs not in the score cache, late interaction by the query and
        the passages it has not encoded yet, each at the speed measured here.

        Without a `result` (no search yet), `rerank_depth` candidates none of which is cached or encoded.
        0.0 for depth 0 or when every pair is cached; otherwise None when the reranker is not loaded yet (this
        never loads it) or its speed was not measured yet. Raises ValueError for a depth out of range, a
        missing depth without a result, or an unknown stage.

        >>> index.expected_rerank_seconds(index.retrieve("tea", rerank_depth=20))  # doctest: +SKIP
        6.2
        """
        if result is None and rerank_depth is None:
            raise ValueError("rerank_depth=None without a search result; pass the depth to estimate")
        depth = result.rerank_depth if rerank_depth is None else rerank_depth
        if not 0 <= depth <= MAX_RERANK_DEPTH:
            raise ValueError(f"rerank_depth={depth} is out of range; use 0 <= rerank_depth <= {MAX_RERANK_DEPTH}")
        loaded = self._rerankers[self._position(stage)]
        if min(depth, len(self)) == 0:
            return 0.0
        if loaded is None:
            return None
        return estimates.rerank_seconds(loaded.model, [self.rerank_work(result, depth, loaded.model)])

    def rerank_work(self, result: SearchResult | None, depth: int, reranker: MeasuredReranker) -> estimates.RerankWork:
        """What reranking `result`'s top `depth` candidates (of `result.candidates_from`) would make `reranker` do
        now: the pairs not in the score cache and, for one that keeps its passage encodings (late interaction),
        how many of their passages it has not encoded yet (at most one per such pair).

        Candidates beyond those `result` retrieved count as neither cached nor encoded when `depth` is deeper
        than the search asked for (`result.rerank_depth`); up to that depth a stage that returned fewer has no
        more. Without a `result`, `depth` candidates count so."""
        depth = min(depth, len(self))
        if result is None:
            candidates, beyond = (), depth
        else:
            stage = result.stages.get(result.candidates_from)
            candidates = stage.hits[:depth] if stage is not None else ()
            beyond = depth - len(candidates) if stage is None or depth > result.rerank_depth else 0
        texts = [self._rerank_text(hit) for hit in candidates]
        pairs = (reranker.uncached(result.query, texts) if texts else 0) + beyond
        caching = reranker.passage_caching()
        if caching is None or not pairs:
            return estimates.RerankWork(pairs)
        return estimates.RerankWork(pairs, min(pairs, caching.unencoded(texts) + beyond))

    def search(self, query: str, *, k: int = config.default("k"), rerank_depth: int = config.default("rerank_depth"),
               candidates_from: str = config.default("candidates_from")) -> SearchResult:
        """Every stage for `query`: BM25, dense, hybrid and, when rerank_depth > 0, each reranker's stage
        in turn."""
        result = self.retrieve(query, k=k, rerank_depth=rerank_depth, candidates_from=candidates_from)
        if rerank_depth <= 0:
            return result
        for stage in self.rerank_stages:
            result = self.rerank(result, stage=stage)
        return result

    def reranker(self, stage: str = RERANK) -> Loaded[MeasuredReranker]:
        """Load (once) the reranker of `stage` (rerank: the first of `Settings.rerankers`, rerank-b the
        second…); ``auto`` is resolved from the corpus' languages. Falls back to late interaction when the
        cross-encoder can't be loaded (see `fallback_reason`). Raises ValueError for a stage these settings
        have no reranker for."""
        position = self._position(stage)
        with self._reranker_lock:
            loaded = self._rerankers[position]
            if loaded is None:
                device = choose_device(self.settings.device)
                choice = self.settings.rerankers[position]
                model_id = choose_reranker(choice.model, self.languages, has_gpu=device.startswith("cuda"))
                loaded = load_reranker(model_id, device, backend=self.settings.reranker_backend(position),
                                       endpoint=self.settings.tei_url or None)
                self._rerankers[position] = loaded
            return loaded

    def loaded_reranker(self, stage: str = RERANK) -> Loaded[MeasuredReranker] | None:
        """The reranker of `stage` if it is loaded already (this never loads it), else None."""
        return self._rerankers[self._position(stage)]

    def reranker_label(self, stage: str = RERANK) -> str:
        """What the column of `stage` names: the loaded reranker's label, else the model its settings name."""
        loaded = self._rerankers[self._position(stage)]
        return loaded.model.label if loaded is not None else self.settings.rerankers[self._position(stage)].model

    def rerank_texts(self) -> list[str]:
        """What a reranker reads of each passage of the corpus (its title too, with `index_titles`), in order."""
        return [self._rerank_text(passage) for passage in self.passages]

    def _position(self, stage: str) -> int:
        position = reranker_position(stage)
        if position is None or position >= len(self.settings.rerankers):
            raise ValueError(f"stage={stage!r} names no reranker of this index; its rerank stages are "
                             f"{', '.join(self.rerank_stages)} (add a reranker with --reranker-model, or 'Compare "
                             "with' in the app's model panel, and build again)")
        return position

    def _check_depths(self, k: int, rerank_depth: int, candidates_from: str) -> None:
        if not 1 <= k <= MAX_K:
            raise ValueError(f"k={k} is out of range; use 1 <= k <= {MAX_K}")
        if not 0 <= rerank_depth <= MAX_RERANK_DEPTH:
            raise ValueError(f"rerank_depth={rerank_depth} is out of range; use 0 <= rerank_depth <= "
                             f"{MAX_RERANK_DEPTH} (0 turns reranking off)")
        if candidates_from not in FIRST_STAGES:
            raise ValueError(f"candidates_from={candidates_from!r} is not a first stage; use one of "
                             f"{', '.join(FIRST_STAGES)}")

    def _stage(self, stage: str, scored: Sequence[Scored], seconds: float, model: str,
               note: str = "") -> StageResult:
        hits = tuple(self._hit(item, rank) for rank, item in enumerate(scored, start=1))
        return StageResult(stage, hits, seconds, model, note)

    def _hit(self, item: Scored, rank: int) -> Hit:
        passage = self.passages[item.index]
        return Hit(passage.passage_id, passage.doc_id, rank, item.score, passage.language, passage.text,
                   passage.title)

    def _rerank_text(self, hit: Hit | Passage) -> str:
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
            "report": self.report.to_json(),
        }
        # Written last, so a folder with a manifest is always complete.
        (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, overrides: Settings | None = None, read: ReadResult | None = None) -> Index:
        """Load an index written by `save`. Raises ValueError when `folder` holds no complete index.

        `overrides`, when given, replaces the saved settings that don't change what is saved (the device, the
        rerankers, the backend, the TEI URL, and the query-time BM25 statistics, stopwords and fusion); `read`
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
        settings = _saved_settings(manifest["settings"])
        if overrides is not None:
            settings = replace(settings, device=overrides.device, rerankers=overrides.rerankers,
                               backend=overrides.backend, tei_url=overrides.tei_url,
                               bm25_statistics=overrides.bm25_statistics, stopwords=overrides.stopwords,
                               fusion=overrides.fusion)
        passages = []
        with open(folder / "passages.jsonl", encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                record["language"] = Language(**record["language"])
                passages.append(Passage(**record))
        passage_terms = read_passage_terms(folder / "terms.jsonl")
        embeddings = np.load(folder / "embeddings.npy", allow_pickle=False)
        fields = manifest["report"]
        report = BuildReport.from_json(fields)
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
                             f"match the saved ones; point --tei-url or SEARCH_TEI_URL at an endpoint serving "
                             f"{dense_id}, use --backend torch, or build the index again with this model")
        if encoder.model.dimension != embeddings.shape[1]:
            raise ValueError(f"{folder}: the saved embeddings have {embeddings.shape[1]} dimensions but "
                             f"{dense_id} gives {encoder.model.dimension}; build the index again")
        return cls(passages, passage_terms, DenseIndex(embeddings), encoder, settings, report)


def read_passage_terms(path: str | Path) -> list[list[str]]:
    """Return the terms of every passage from a terms.jsonl written by `Index.save`, equal terms sharing
    one string object.

    json gives every term of every line a string of its own, about 55 bytes each; shared, as analysis's
    caches leave them in a fresh build, reading 100,000 passages of 200 terms peaks about 1.3 GB lower
    (benchmarks/bench_bm25_memory.py, ``load``). Raises OSError or json.JSONDecodeError for a broken file.
    """
    shared: dict[str, str] = {}
    with open(path, encoding="utf-8") as lines:
        return [list(map(shared.setdefault, terms, terms)) for terms in map(json.loads, lines)]


@dataclass(frozen=True)
class Prepared:
    """A corpus read and split, not indexed yet: what a build will embed, so its cost can be said (and files
    left out) before the long step. `problems` are the reading's."""

    read: ReadResult
    passages: tuple[Passage, ...]
    settings: Settings
    read_seconds: float = 0.0

    def per_source(self) -> tuple[SourceCount, ...]:
        """Passages and documents per source file, the largest contributors first."""
        return passages_per_source(self.passages)

    def without(self, sources: Collection[str]) -> Prepared:
        """This corpus without the documents and passages of `sources` (files the user left out), said as a
        warning per file. Raises ValueError when that leaves no passage."""
        dropped = set(sources)
        if not dropped:
            return self
        passages = tuple(p for p in self.passages if p.source not in dropped)
        if not passages:
            raise ValueError("leaving those files out leaves no passage to index; keep at least one file")
        documents = tuple(d for d in self.read.documents if d.source not in dropped)
        notes = tuple(Problem(source, "left out before embedding, as asked", skipped=True)
                      for source in sorted(dropped))
        read = replace(self.read, documents=documents, problems=(*self.read.problems, *notes))
        return replace(self, read=read, passages=passages)


def prepare(source: Sequence[str | Path] | ReadResult, settings: Settings | None = None, *,
            names: Sequence[str] | None = None, max_passages: int | None = None) -> Prepared:
    """Read `source` (paths, or documents already read) and split it into passages: the first step of
    `build`, fast, after which `estimates.embedding_seconds` says what embedding will cost. Raises ValueError
    when no passage could be read or there are more than `max_passages` passages (naming
    SEARCH_MAX_PASSAGES)."""
    settings = settings or Settings()
    started = time.perf_counter()
    read = source if isinstance(source, ReadResult) else read_paths(
        source, text_column=settings.text_column, names=names, encoding=settings.encoding)
    try:  # passages past max_passages are counted, not kept
        passages = tuple(split_documents(read.documents, window=settings.window, overlap=settings.overlap,
                                         max_passages=max_passages))
    except TooManyPassages as error:
        raise ValueError(
            f"the corpus has {error.passages:,} passages ({len(read.documents):,} documents); this server indexes "
            f"at most {error.limit:,} (SEARCH_MAX_PASSAGES). Upload fewer files, use a larger passage window, "
            "or raise SEARCH_MAX_PASSAGES where you run the app.") from None
    if not passages:
        reasons = "; ".join(str(problem) for problem in read.problems[:10]) or "the input has no text"
        raise ValueError(f"no passage could be read ({reasons})")
    return Prepared(read, passages, settings, time.perf_counter() - started)


@dataclass(frozen=True)
class BuildEstimate:
    """What embedding a prepared corpus will cost here: its passages, the seconds at the encoder's speed
    measured on this machine (None when it could not be measured), the encoder's label, and the files that
    contribute most."""

    passages: int
    seconds: float | None
    encoder: str
    per_source: tuple[SourceCount, ...]


def estimate(prepared: Prepared) -> BuildEstimate:
    """Load the encoder `prepared.settings` names (a fallback as the build would) and say what embedding the
    prepared passages will take at its speed on this machine, measuring it on a few of them first if
    nothing has measured it yet in this process."""
    settings = prepared.settings
    encoder = load_dense_encoder(settings.dense_model, settings.device, backend=settings.backend,
                                 endpoint=settings.tei_url or None)
    texts = [_index_text(passage, settings) for passage in prepared.passages]
    try:
        estimates.ensure_measured(encoder.model, texts)
    except (ValueError, OSError) as error:  # e.g. a remote encoder that does not answer: the build will say
        logger.warning("could not measure %s: %s", encoder.model.label, error)
    return BuildEstimate(len(texts), estimates.embedding_seconds(encoder.model, len(texts)), encoder.model.label,
                         prepared.per_source())


def build(source: Sequence[str | Path] | ReadResult | Prepared, settings: Settings | None = None, *,
          progress: ProgressCallback | None = None, cache_dir: str | Path | None = None,
          names: Sequence[str] | None = None, max_passages: int | None = None,
          should_stop: Callable[[], bool] | None = None) -> Index:
    """Read `source` (paths, documents already read, or a corpus `prepare` read and split already), split,
    detect languages and build both indexes.

    When `cache_dir` is given, an index with the same passages, settings and dense model is loaded from
    there instead of being built again (`report.reused`), and a new one is saved there.
    `progress("embeddings", 0, n)` is reported before embedding starts, so a caller can show the passage
    count (and, from the following reports, the time left) before the long step; every embedded batch is
    recorded in the encoder's speed meter (`search.estimates`). Raises ValueError when no passage could be
    read or there are more than `max_passages` passages (the message names SEARCH_MAX_PASSAGES), and
    BuildCancelled, within one step's batch, once `should_stop()` is true.
    """
    stop = should_stop or (lambda: False)

    def report_progress(step: str, done: int, total: int) -> None:
        if stop():
            raise BuildCancelled(f"the build was cancelled during {step} ({done} of {total} done)")
        if progress is not None:
            progress(step, done, total)

    timings: dict[str, float] = {}
    report_progress("read", 0, 1)
    if isinstance(source, Prepared):
        if settings is not None and settings != source.settings:
            raise ValueError("build() of a prepared corpus takes the settings it was prepared with; prepare it again "
                             "with the new settings")
        prepared = source
    else:
        prepared = prepare(source, settings, names=names, max_passages=max_passages)
    settings, read, passages = prepared.settings, prepared.read, list(prepared.passages)
    timings["read"] = prepared.read_seconds
    report_progress("read", 1, 1)

    encoder = load_dense_encoder(settings.dense_model, settings.device, backend=settings.backend,
                                 endpoint=settings.tei_url or None)
    key = index_key(passages, settings, encoder)
    if cache_dir is not None:
        cached = Path(cache_dir) / key
        if (cached / "manifest.json").is_file():
            try:
                index = Index.load(cached, overrides=settings, read=read)
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
    last = [started, 0]  # when the previous batch ended, and how many were done then

    def embedded(done: int, total: int) -> None:
        now = time.perf_counter()
        estimates.record(encoder.model, done - last[1], now - last[0])
        last[:] = [now, done]
        report_progress("embeddings", done, total)

    dense = DenseIndex.build(encoder.model, index_texts, progress=embedded)
    timings["embeddings"] = time.perf_counter() - started

    counts = Counter(p.language.group for p in passages)
    report = BuildReport(
        documents=len(read.documents), passages=len(passages), files_read=read.files_read,
        problems=read.problems, languages=dict(counts.most_common()), dense_model=encoder.model.label,
        dense_fallback_reason=encoder.fallback_reason, device=encoder.model.device, timings_s=timings,
        index_key=key, per_source=passages_per_source(passages),
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
    """Where built indexes are kept (the setting SEARCH_CACHE_DIR)."""
    return Path(config.current().cache_dir)


def _saved_settings(saved: dict) -> Settings:
    """The settings of a manifest, including those written before rerankers were a list."""
    saved = dict(saved)
    if "reranker_model" in saved:
        rerankers = [RerankerChoice(saved.pop("reranker_model"))]
        compare = saved.pop("compare_reranker_model", "")
        backend = saved.pop("compare_backend", "")
        if compare:
            rerankers.append(RerankerChoice(compare, backend))
        saved["rerankers"] = rerankers
    saved["rerankers"] = tuple(RerankerChoice(**item) if isinstance(item, dict) else item
                               for item in saved["rerankers"])
    return Settings(**saved)


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


