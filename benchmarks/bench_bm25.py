"""Time `BM25Index.search` against plain `rank_bm25.BM25Okapi.get_scores` + sort on one corpus.

The corpus is XQuAD's English paragraphs repeated to `--passages` passages when ``shared/xquad`` sits
beside the repository (its questions are the queries), otherwise a synthetic Zipf-distributed corpus.
Both sides get the same analysed terms, k1 and b; the table shows medians over all queries and the
speedup, and checks that the sparse scores equal rank_bm25's (with the Lucene idf) on every query.

    python benchmarks/bench_bm25.py --passages 10000 --queries 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import rank_bm25

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.analysis import terms  # noqa: E402
from search.bm25 import DEFAULT_B, DEFAULT_K1, BM25Index, LuceneBM25Okapi  # noqa: E402

XQUAD_DIR = Path(__file__).resolve().parents[2] / "shared" / "xquad"


def xquad_corpus(path: Path, passages: int, queries: int) -> tuple[list[list[str]], list[list[str]], str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs = [paragraph for article in data["data"] for paragraph in article["paragraphs"]]
    paragraph_terms = [terms(paragraph["context"], "en") for paragraph in paragraphs]
    question_terms = [terms(qa["question"], "en") for paragraph in paragraphs for qa in paragraph["qas"]]
    corpus = [paragraph_terms[i % len(paragraph_terms)] for i in range(passages)]
    label = f"XQuAD en: {len(paragraphs)} paragraphs repeated to {passages} passages"
    return corpus, question_terms[:queries], label


def synthetic_corpus(passages: int, queries: int, seed: int) -> tuple[list[list[str]], list[list[str]], str]:
    rng = np.random.default_rng(seed)
    vocabulary = [f"w{i}" for i in range(50_000)]
    lengths = rng.integers(60, 200, size=passages)
    corpus = [[vocabulary[min(i, len(vocabulary)) - 1] for i in rng.zipf(1.2, size=n)] for n in lengths]
    questions = [[vocabulary[min(i, len(vocabulary)) - 1] for i in rng.zipf(1.2, size=8)] for _ in range(queries)]
    return corpus, questions, f"synthetic Zipf(1.2) corpus of {passages} passages"


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=10_000, help="corpus size (default 10000)")
    parser.add_argument("--queries", type=int, default=300, help="number of queries (default 300)")
    parser.add_argument("--k", type=int, default=10, help="hits per query (default 10)")
    parser.add_argument("--k1", type=float, default=DEFAULT_K1)
    parser.add_argument("--b", type=float, default=DEFAULT_B)
    parser.add_argument("--xquad", type=Path, default=XQUAD_DIR, help="folder with xquad.en.json")
    parser.add_argument("--synthetic", action="store_true", help="use the synthetic corpus even if XQuAD is there")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    xquad_file = args.xquad / "xquad.en.json"
    if xquad_file.is_file() and not args.synthetic:
        corpus, queries, label = xquad_corpus(xquad_file, args.passages, args.queries)
    else:
        corpus, queries, label = synthetic_corpus(args.passages, args.queries, args.seed)
    queries = [query for query in queries if query]

    index, index_build = timed(BM25Index.build, corpus, args.k1, args.b)
    okapi, okapi_build = timed(rank_bm25.BM25Okapi, corpus, None, args.k1, args.b)
    lucene = LuceneBM25Okapi(corpus, k1=args.k1, b=args.b)

    def okapi_search(query: list[str]) -> np.ndarray:
        scores = okapi.get_scores(query)
        return np.argsort(-scores, kind="stable")[: args.k]

    index_times, okapi_times, max_difference = [], [], 0.0
    for query in queries:
        index_times.append(timed(index.search, query, args.k)[1])
        okapi_times.append(timed(okapi_search, query)[1])
        max_difference = max(max_difference, float(np.max(np.abs(index.scores(query) - lucene.get_scores(query)))))

    index_median, okapi_median = statistics.median(index_times), statistics.median(okapi_times)
    index_p90 = statistics.quantiles(index_times, n=10)[-1]
    okapi_p90 = statistics.quantiles(okapi_times, n=10)[-1]
    print(f"corpus: {label}; {sum(map(len, corpus)):,} terms, vocabulary {index.vocabulary_size:,}")
    print(f"queries: {len(queries)}, k={args.k}, k1={args.k1}, b={args.b}")
    print(f"{'':26}{'BM25Index':>12}{'BM25Okapi':>12}{'speedup':>10}")
    print(f"{'build (s)':26}{index_build:12.3f}{okapi_build:12.3f}{okapi_build / index_build:9.2f}x")
    rows = [("query median (ms)", index_median, okapi_median), ("query p90 (ms)", index_p90, okapi_p90)]
    for name, ours, theirs in rows:
        print(f"{name:26}{ours * 1e3:12.3f}{theirs * 1e3:12.3f}{theirs / ours:9.1f}x")
    print(f"max |BM25Index.scores - LuceneBM25Okapi.get_scores| over all queries: {max_difference:.2e}")


if __name__ == "__main__":
    main()
