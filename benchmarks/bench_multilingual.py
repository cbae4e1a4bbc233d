"""Issue 17's table, before and after, in one run: nDCG@10 of BM25, dense, hybrid and reranked on

(a) the sample corpus (corpora/polyglot-facts) with its own judgments;
(b) a mixed pool of the XQuAD languages at hand: each language's paragraphs pooled, the first question of
    each paragraph asked, relevant = its own-language paragraph (grade 2) and the same paragraph in every
    other language (grade 1);
(c) the same pool, relevant = the own-language paragraph only;
(d) each XQuAD language alone (and its BM25 on every question);
(e) each other XQuAD language's paragraphs asked the English questions (cross-lingual);
and whether the reranked top-1 score tells questions with an answer from questions without one.

"before" is the old default (BM25 statistics over the whole corpus, no stopwords, hybrid = RRF of BM25 and
dense); "after" is the default now (see docs/ranking.md). Both share one index (passages, terms, embeddings)
per corpus, so only ranking differs. Offline models: the bundled 4-bit multilingual-e5-small for dense and
late interaction as the reranker.

    python benchmarks/bench_multilingual.py [--xquad ../shared/xquad] [--parts sample,pool,mono]
        [--pool-paragraphs 60] [--rerank-queries 120] [--mono-rerank-queries 60] [--json]

Indexes are cached (--cache-dir, default the pipeline's cache), so only the first run embeds XQuAD. XQuAD is
read by path and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search.datasets import load_dataset  # noqa: E402
from search.dense import DenseIndex  # noqa: E402
from search.evaluation import evaluate  # noqa: E402
from search.judgments import Judgments, Query  # noqa: E402
from search.models import FALLBACK_DENSE_ID  # noqa: E402
from search.pipeline import Index, Settings, build, default_cache_dir  # noqa: E402

LANGUAGES = ("en", "de", "es", "ru", "ar", "hi", "zh")
SAMPLE = ROOT / "corpora" / "polyglot-facts"
FIRST_STAGES = ("bm25", "dense", "hybrid")
AFTER = Settings(dense_model=FALLBACK_DENSE_ID, rerankers=("late-interaction",), device="cpu")
BEFORE = replace(AFTER, bm25_statistics="corpus", stopwords=False, fusion="rrf")
# Reranked queries of the pool: the 120 English and German questions.
POOL_RERANK_LANGUAGES = ("en", "de")


# -- corpora ----------------------------------------------------------------------------------------------

def mono_index(xquad: Path, language: str, settings: Settings, cache_dir: Path | None) -> tuple[Index, Judgments]:
    """One XQuAD language as a corpus of its own (built once, then loaded from `cache_dir`)."""
    dataset = load_dataset(xquad / f"xquad.{language}.json")
    return build(dataset.corpus, settings, cache_dir=cache_dir), dataset.judgments


def xquad_pool(monos: dict[str, tuple[Index, Judgments]], paragraphs: int | None,
               settings: Settings) -> tuple[Index, Judgments, Judgments]:
    """The languages of `monos` pooled into one index, with its two judgments (cross-language, own-language).

    Document ids become ``LANG/PARAGRAPH`` (XQuAD is parallel, so PARAGRAPH names the same paragraph in every
    language) and query ids ``LANG/QUESTION``. `paragraphs` keeps the first N paragraphs of each language.
    The pool reuses the passages, languages, terms and embeddings of the one-language indexes: the same
    texts through the same analysis and model, so nothing is embedded twice.
    """
    passages, terms, vectors = [], [], []
    queries: list[Query] = []
    cross: dict[str, dict[str, int]] = {}
    own: dict[str, dict[str, int]] = {}
    kept_by_language = {}
    for language, (index, _) in monos.items():
        kept = list(dict.fromkeys(passage.doc_id for passage in index.passages))[:paragraphs]
        kept_by_language[language] = set(kept)
    shared = set.intersection(*kept_by_language.values())
    for language, (index, judgments) in monos.items():
        for position, passage in enumerate(index.passages):
            if passage.doc_id in kept_by_language[language]:
                passages.append(replace(passage, passage_id=f"{language}/{passage.passage_id}",
                                        doc_id=f"{language}/{passage.doc_id}"))
                terms.append(index.passage_terms[position])
                vectors.append(index.dense.embeddings[position])
        first_question: dict[str, Query] = {}
        for query in judgments.queries:
            (doc_id,) = judgments.qrels[query.query_id]
            first_question.setdefault(doc_id, query)
        for doc_id in sorted(shared, key=_paragraph_order):
            query = first_question.get(doc_id)
            if query is None:
                continue
            query_id = f"{language}/{query.query_id}"
            queries.append(Query(query_id, query.text))
            own[query_id] = {f"{language}/{doc_id}": 1}
            cross[query_id] = {f"{other}/{doc_id}": 2 if other == language else 1 for other in monos}
    first = next(iter(monos.values()))[0]
    counts = Counter(passage.language.group for passage in passages)
    report = replace(first.report, documents=len({p.doc_id for p in passages}), passages=len(passages),
                     languages=dict(counts.most_common()), timings_s={}, index_key="pool", reused=True)
    index = Index(passages, terms, DenseIndex(np.vstack(vectors)), first.encoder, settings, report)
    return index, Judgments(tuple(queries), cross), Judgments(tuple(queries), own)


def first_questions(judgments: Judgments) -> Judgments:
    """The first question of each paragraph (as the pool asks them)."""
    seen: set[str] = set()
    queries = []
    for query in judgments.queries:
        (doc_id,) = judgments.qrels[query.query_id]
        if doc_id not in seen:
            seen.add(doc_id)
            queries.append(query)
    return Judgments(tuple(queries), judgments.qrels)


def _paragraph_order(doc_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in doc_id.split("-"))


def sample_corpus(settings: Settings, cache_dir: Path | None) -> tuple[Index, Judgments]:
    dataset = load_dataset(SAMPLE)
    return build(dataset.corpus, settings, cache_dir=cache_dir), dataset.judgments


# -- runs -------------------------------------------------------------------------------------------------

class QueryVectors:
    """The encoder with its query embeddings remembered (and kept in `path` between runs), so "before" and
    "after", the pool and each language alone embed a question once."""

    def __init__(self, model, path: Path | None) -> None:
        self._model = model
        self._path = path
        self._vectors: dict[str, np.ndarray] = {}
        if path is not None and path.with_suffix(".json").is_file() and path.with_suffix(".npy").is_file():
            texts = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            self._vectors = dict(zip(texts, np.load(path.with_suffix(".npy")), strict=True))
        self._saved = len(self._vectors)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def embed(self, texts, *, is_query: bool = False, **kwargs):
        if not is_query or len(texts) != 1:
            return self._model.embed(texts, is_query=is_query, **kwargs)
        if texts[0] not in self._vectors:
            self._vectors[texts[0]] = self._model.embed(texts, is_query=True, **kwargs)[0]
            if len(self._vectors) - self._saved >= 200:
                self.save()
        return self._vectors[texts[0]][None, :]

    def save(self) -> None:
        if self._path is None or len(self._vectors) == self._saved:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        np.save(self._path.with_suffix(".npy"), np.stack(list(self._vectors.values())))
        self._path.with_suffix(".json").write_text(json.dumps(list(self._vectors), ensure_ascii=False),
                                                   encoding="utf-8")
        self._saved = len(self._vectors)


def before_and_after(index: Index, vectors: QueryVectors) -> dict[str, Index]:
    """The same passages, terms and embeddings, ranked the old way and the new."""
    encoder = replace(index.encoder, model=vectors)
    return {name: Index(index.passages, index.passage_terms, index.dense, encoder, settings, index.report)
            for name, settings in (("before", BEFORE), ("after", AFTER))}


def table_row(index: Index, judgments: Judgments, rerank_judgments: Judgments | None,
              rerank_queries: int | None) -> dict[str, float]:
    """nDCG@10 of the first stages on every query, and of rerank (of the hybrid candidates) on the first
    `rerank_queries` of `rerank_judgments` (0: no rerank)."""
    first = evaluate(index, judgments, stages=FIRST_STAGES, rerank_depth=0)
    row = {stage: first.stages[stage]["ndcg@10"] for stage in FIRST_STAGES}
    row["hybrid_recall@20"] = _recall_at(first, "hybrid", 20, judgments)
    row["dense_recall@20"] = _recall_at(first, "dense", 20, judgments)
    if rerank_queries:
        reranked = evaluate(index, rerank_judgments or judgments, stages=("hybrid", "dense", "rerank"),
                            rerank_depth=20, candidates_from="hybrid", max_queries=rerank_queries)
        row.update(rerank=reranked.stages["rerank"]["ndcg@10"], rerank_queries=reranked.queries,
                   rerank_hybrid=reranked.stages["hybrid"]["ndcg@10"],
                   rerank_dense=reranked.stages["dense"]["ndcg@10"])
    row["hybrid_model"] = first.models["hybrid"]
    row["queries"] = first.queries
    return row


def _recall_at(report, stage: str, depth: int, judgments: Judgments) -> float:
    hits = [sum(1 for rank in ranks if rank <= depth) / len([g for g in judgments.qrels[query].values() if g > 0])
            for query, ranks in report.landed[stage].items()]
    return sum(hits) / len(hits) if hits else 0.0


# -- "no good answer": does a reranked top-1 score separate answerable queries from the others? -----------

# Questions the sample corpus has no answer to (its topics are tea, the Moon, honeybees, volcanoes,
# printing, chess, the bicycle and coral reefs), in its languages.
SAMPLE_UNANSWERABLE = (
    "Arbeitslosenquote in Portugal",
    "Who won the 2018 FIFA World Cup?",
    "How tall is the Eiffel Tower?",
    "Wann wurde der Euro als Bargeld eingeführt?",
    "Quel est le salaire minimum en France ?",
    "¿Quién escribió Cien años de soledad?",
    "Сколько стоит билет на метро в Москве?",
    "ما هي عاصمة كندا؟",
    "भारत की जनसंख्या कितनी है?",
    "比特币是谁发明的？",
    "東京の人口は何人ですか？",
    "ประเทศไทยมีกี่จังหวัด",
)


def top_scores(index: Index, queries: Sequence[str], depth: int = 20) -> list[float]:
    """The reranked top-1 score of each query (rerank of the hybrid top `depth`)."""
    scores = []
    for query in queries:
        result = index.rerank(index.retrieve(query, k=10, rerank_depth=depth))
        hits = result.stages["rerank"].hits
        scores.append(hits[0].score if hits else float("-inf"))
    return scores


def separation(answerable: Sequence[float], unanswerable: Sequence[float]) -> dict[str, float]:
    """How well a threshold on the top-1 score tells the two apart: ROC AUC (the chance that an answerable
    query's top score beats an unanswerable one's), and the best threshold's balanced accuracy."""
    pairs = [(a > u) + 0.5 * (a == u) for a in answerable for u in unanswerable]
    best_threshold, best_accuracy = float("nan"), 0.0
    for threshold in sorted(set(answerable) | set(unanswerable)):
        accuracy = (sum(a >= threshold for a in answerable) / len(answerable)
                    + sum(u < threshold for u in unanswerable) / len(unanswerable)) / 2
        if accuracy > best_accuracy:
            best_threshold, best_accuracy = threshold, accuracy
    return {"auc": sum(pairs) / len(pairs), "best_threshold": best_threshold, "balanced_accuracy": best_accuracy,
            "answerable_median": float(np.median(answerable)), "unanswerable_median": float(np.median(unanswerable)),
            "answerable_min": min(answerable), "unanswerable_max": max(unanswerable),
            "answerable": len(answerable), "unanswerable": len(unanswerable),
            "answerable_scores": list(answerable), "unanswerable_scores": list(unanswerable)}


def balanced_accuracy(answerable: Sequence[float], unanswerable: Sequence[float], threshold: float) -> float:
    """Half the share of answerable queries at or above `threshold` plus half the unanswerable below it."""
    return (sum(a >= threshold for a in answerable) / len(answerable)
            + sum(u < threshold for u in unanswerable) / len(unanswerable)) / 2


def xquad_answerability(index: Index, judgments: Judgments, queries: int) -> tuple[Index, list[str], list[str]]:
    """`index` cut to the first half of its articles, with `queries` questions of that half (answerable)
    and `queries` of the other half (unanswerable: no article of theirs is left)."""
    articles = sorted({_paragraph_order(p.doc_id)[0] for p in index.passages})
    kept = set(articles[: len(articles) // 2])
    positions = [i for i, p in enumerate(index.passages) if _paragraph_order(p.doc_id)[0] in kept]
    passages = [index.passages[i] for i in positions]
    counts = Counter(passage.language.group for passage in passages)
    half = Index(passages, [index.passage_terms[i] for i in positions], DenseIndex(index.dense.embeddings[positions]),
                 index.encoder, index.settings, replace(index.report, languages=dict(counts), passages=len(passages)))
    answerable, unanswerable, seen = [], [], set()
    for query in judgments.queries:
        (doc_id,) = judgments.qrels[query.query_id]
        if doc_id in seen:
            continue  # one question per paragraph
        seen.add(doc_id)
        (answerable if _paragraph_order(doc_id)[0] in kept else unanswerable).append(query.text)
    step_a, step_u = max(1, len(answerable) // queries), max(1, len(unanswerable) // queries)
    return half, answerable[::step_a][:queries], unanswerable[::step_u][:queries]


# -- the report -------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict[str, object]:
    parts = set(args.parts.split(","))
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    out: dict[str, object] = {"tables": {}, "answerability": {}}
    tables: dict[str, dict[str, dict[str, float]]] = out["tables"]  # type: ignore[assignment]

    def log(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    shared: list[QueryVectors] = []

    def query_vectors(index: Index) -> QueryVectors:
        # One memo for every corpus: they all use the same dense model.
        if not shared:
            shared.append(QueryVectors(index.encoder.model, cache_dir and cache_dir / "bench-query-vectors"))
        return shared[0]

    started = time.perf_counter()
    if "sample" in parts:
        index, judgments = sample_corpus(AFTER, cache_dir)
        for name, ranked in before_and_after(index, query_vectors(index)).items():
            tables.setdefault(f"sample ({len(index)} passages, {len(judgments.queries)} queries)", {})[name] = (
                table_row(ranked, judgments, None, len(judgments.queries)))
        log(f"sample done ({time.perf_counter() - started:.0f}s)")
    monos = {}
    if parts & {"pool", "mono", "crosslingual", "threshold"}:
        monos = {language: mono_index(args.xquad, language, AFTER, cache_dir) for language in args.languages}
        vectors = query_vectors(next(iter(monos.values()))[0])
    if "pool" in parts:
        pool, cross, own = xquad_pool(monos, args.pool_paragraphs, AFTER)
        half = args.rerank_queries // len(POOL_RERANK_LANGUAGES)
        rerank_queries = Judgments(tuple(query for language in POOL_RERANK_LANGUAGES for query in
                                         [q for q in cross.queries if q.query_id.startswith(f"{language}/")][:half]),
                                   cross.qrels)
        shape = f"{len(args.languages)} languages, {len(pool)} passages, {len(cross.queries)} queries"
        for name, ranked in before_and_after(pool, vectors).items():
            tables.setdefault(f"XQuAD pool, cross-language judgments ({shape})", {})[name] = table_row(
                ranked, cross, rerank_queries, args.rerank_queries)
            tables.setdefault(f"XQuAD pool, own-language judgments ({shape})", {})[name] = table_row(
                ranked, own, None, 0)
            vectors.save()
            log(f"pool {name} done ({time.perf_counter() - started:.0f}s)")
    if "mono" in parts:
        bm25: dict[str, dict[str, float]] = out.setdefault("bm25_all_questions", {})  # type: ignore[assignment]
        for language, (index, judgments) in monos.items():
            first = first_questions(judgments)
            for name, ranked in before_and_after(index, vectors).items():
                tables.setdefault(f"XQuAD {language} alone ({len(index)} passages, {len(first.queries)} queries: "
                                  "the first question of each paragraph)", {})[name] = table_row(
                    ranked, first, None, args.mono_rerank_queries)
                bm25.setdefault(language, {})[name] = evaluate(ranked, judgments, stages=("bm25",),
                                                               rerank_depth=0).stages["bm25"]["ndcg@10"]
            vectors.save()
            log(f"mono {language} done ({time.perf_counter() - started:.0f}s)")
    if "crosslingual" in parts and "en" in monos:
        english = first_questions(monos["en"][1])
        for language, (index, judgments) in monos.items():
            if language == "en":
                continue
            asked = Judgments(english.queries, judgments.qrels)  # XQuAD is parallel: the same ids
            for name, ranked in before_and_after(index, vectors).items():
                tables.setdefault(f"XQuAD {language} paragraphs, English questions ({len(index)} passages, "
                                  f"{len(asked.queries)} queries)", {})[name] = table_row(ranked, asked, None, 0)
        log(f"cross-lingual done ({time.perf_counter() - started:.0f}s)")
    if "threshold" in parts:
        answerability: dict[str, dict[str, float]] = out["answerability"]  # type: ignore[assignment]
        index, judgments = sample_corpus(AFTER, cache_dir)
        answerability["sample"] = separation(top_scores(index, [q.text for q in judgments.queries]),
                                             top_scores(index, SAMPLE_UNANSWERABLE))
        for language in args.threshold_languages:
            half, answerable, unanswerable = xquad_answerability(*monos[language], args.threshold_queries)
            answerability[f"XQuAD {language}"] = separation(top_scores(half, answerable),
                                                            top_scores(half, unanswerable))
        # One threshold for every corpus: the best over all of them, and how each corpus fares with it.
        candidates = sorted({score for row in answerability.values()
                             for score in row["answerable_scores"] + row["unanswerable_scores"]})
        common = max(candidates, key=lambda threshold: sum(
            balanced_accuracy(row["answerable_scores"], row["unanswerable_scores"], threshold)
            for row in answerability.values()))
        for row in answerability.values():
            row["common_threshold"] = common
            row["balanced_accuracy_at_common"] = balanced_accuracy(row["answerable_scores"],
                                                                   row["unanswerable_scores"], common)
        log(f"answerability done ({time.perf_counter() - started:.0f}s)")
    for vectors in shared:
        vectors.save()
    out["seconds"] = time.perf_counter() - started
    return out


def print_report(result: dict[str, object]) -> None:
    for corpus, rows in result["tables"].items():  # type: ignore[union-attr]
        print(f"\n{corpus}")
        print(f"{'':<8}{'BM25':>8}{'dense':>8}{'hybrid':>8}{'reranked':>10}  {'(queries)':<10}"
              f"{'hybrid R@20':>12}{'dense R@20':>11}  hybrid")
        for name, row in rows.items():
            rerank = (f"{row['rerank']:>10.4f}  ({row['rerank_queries']:<4})    " if "rerank" in row
                      else f"{'-':>10}  {'':<10}")
            print(f"{name:<8}{row['bm25']:>8.4f}{row['dense']:>8.4f}{row['hybrid']:>8.4f}{rerank}"
                  f"{row['hybrid_recall@20']:>12.3f}{row['dense_recall@20']:>11.3f}  {row['hybrid_model']}")
            if "rerank" in row and row["rerank_queries"] != row.get("queries"):
                print(f"{'':<8}on the reranked queries: dense {row['rerank_dense']:.4f}, "
                      f"hybrid {row['rerank_hybrid']:.4f}")
    if result.get("bm25_all_questions"):
        print("\nBM25 nDCG@10 on every question of each XQuAD language alone")
        rows = result["bm25_all_questions"]
        print(f"{'':<8}" + "".join(f"{language:>8}" for language in rows) + f"{'mean':>8}")
        for name in ("before", "after"):
            values = [rows[language][name] for language in rows]
            print(f"{name:<8}" + "".join(f"{value:>8.4f}" for value in values) + f"{sum(values) / len(values):>8.4f}")
    if result["answerability"]:
        print("\nreranked top-1 score, answerable vs unanswerable queries (late interaction)")
        print(f"{'corpus':<12}{'AUC':>6}{'best thr':>10}{'bal.acc':>9}{'ans med':>9}{'ans min':>9}"
              f"{'unans med':>11}{'unans max':>11}{'n':>8}")
        for corpus, row in result["answerability"].items():  # type: ignore[union-attr]
            print(f"{corpus:<12}{row['auc']:>6.3f}{row['best_threshold']:>10.3f}{row['balanced_accuracy']:>9.3f}"
                  f"{row['answerable_median']:>9.3f}{row['answerable_min']:>9.3f}{row['unanswerable_median']:>11.3f}"
                  f"{row['unanswerable_max']:>11.3f}{row['answerable']:>5}/{row['unanswerable']}"
                  f"   at {row['common_threshold']:.3f}: {row['balanced_accuracy_at_common']:.3f}")
    print(f"\n{result['seconds']:.0f}s in all")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad", type=Path, default=ROOT.parent / "shared" / "xquad")
    parser.add_argument("--parts", default="sample,pool,mono,crosslingual,threshold")
    parser.add_argument("--languages", type=lambda text: text.split(","), default=list(LANGUAGES))
    parser.add_argument("--pool-paragraphs", type=int, default=None,
                        help="paragraphs per language in the pool (default: all 240)")
    parser.add_argument("--rerank-queries", type=int, default=120,
                        help="English and German pool questions reranked (default 120)")
    parser.add_argument("--mono-rerank-queries", type=int, default=60)
    parser.add_argument("--threshold-languages", type=lambda text: text.split(","), default=["en", "de", "zh"])
    parser.add_argument("--threshold-queries", type=int, default=40)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    needs_xquad = set(args.parts.split(",")) & {"pool", "mono", "crosslingual", "threshold"}
    if needs_xquad and not (args.xquad / "xquad.en.json").is_file():
        print(f"XQuAD not found at {args.xquad}; pass --xquad DIR or --parts sample", file=sys.stderr)
        return 2
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
