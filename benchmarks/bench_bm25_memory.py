"""Peak memory and time of building BM25 over a large multilingual corpus: `BM25Index.build` against
`rank_bm25.BM25Okapi` on the same token lists, with the query time of each.

The corpus is synthetic and deterministic (`--seed`): `--passages` passages of about `--words` terms,
in eight languages and five scripts (Latin en/de/fr/es, Cyrillic ru, Arabic ar, Devanagari hi, and Han
zh given as the analyser gives it, every character and every pair of neighbours). Each language has its
own vocabulary of syllable-built words drawn from a Zipf-Mandelbrot law, so frequent words are short and
rare ones long, and equal terms are one string object, as `search.analysis`'s caches make them.

The parent makes the corpus once and writes it as its distinct terms plus a term id per term; every
contender runs in a fresh child process that reads it back into token lists (each passage its own list,
equal terms one string), collects garbage and trims the C heap (so the build cannot reuse memory freed
before it), measures its resident memory (VmRSS), resets the kernel's peak counter
(``5 > /proc/self/clear_refs``) and builds; "peak" is then VmHWM minus that baseline: every byte the
build touched at its highest point, Python objects and numpy buffers alike. (getrusage's ru_maxrss cannot
be reset, and would include reading the corpus.) "kept" is VmRSS after the build, the index alive, minus
the baseline. `load` measures `Index.load`'s part of BM25: reading a saved terms.jsonl back with the same
reader the index cache uses, then building (language statistics), against a child that has not read anything.

Rounds are interleaved, the order rotating each round; the table shows medians and ratios to rank-bm25.
Each child then times `--queries` searches (top 10) `--repeats` times, the median of each query's times,
the median over queries (rank-bm25's run once each: it takes about 1,000 times longer).

`--baseline REV` adds our `search/` as of a git revision (extracted to a temporary folder) as a contender,
and one more child that builds ours and REV's index on the same corpus, checks that every one of 10 x
`--queries` queries gets the same scores (bit for bit) and the same top 10 from both, and times those
searches alternating between the two in that one process: the query-time comparison to read (the
per-child query times above differ by more than that between processes on a busy machine).

`--xquad DIR`: XQuAD's paragraphs (7 languages, analysed as the app does) repeated up to `--passages`,
with its questions as queries (one per paragraph, analysed by `analysis.query_terms` for all seven
languages), instead of the synthetic corpus. Needs Linux (/proc).

    python benchmarks/bench_bm25_memory.py                       # 100,000 passages, 3 rounds, ~5 minutes
    python benchmarks/bench_bm25_memory.py --baseline 4e4b434    # + the code before this change, ~13 minutes
    python benchmarks/bench_bm25_memory.py --baseline 4e4b434 --xquad ../shared/xquad
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
K1, B = 0.9, 0.6  # search.bm25's defaults, given explicitly so rank-bm25 runs with the same

# (language, share of the passages, script's letters or syllable parts)
LANGUAGES = (
    ("en", 0.28, "latin"), ("de", 0.12, "latin"), ("fr", 0.10, "latin"), ("es", 0.10, "latin"),
    ("ru", 0.10, "cyrillic"), ("ar", 0.08, "arabic"), ("hi", 0.08, "devanagari"), ("zh", 0.14, "han"),
)
SCRIPTS = {
    "latin": ("bcdfghklmnprstvwz", "aeiou"),
    "cyrillic": ("бвгдзклмнпрстфхчш", "аеиоуыя"),
    "arabic": ("بتثجحخدذرزسشصضطعفقكلمنهوي", "اوي"),
    "devanagari": ("कखगघचजटडतदनपबमयरलवसह", "ािीुेो"),
}
VOCABULARY = 300_000  # word types per language before sampling (Heaps' law gives far fewer in use)
HAN_CHARACTERS = 6_000
# P(rank r) ~ 1 / (r + 2.7) ** s. s = 1.2 gives 200-term passages 63% distinct terms and the top word 8% of
# the text (XQuAD's analysed paragraphs, 115-145 terms: 59% to 73% distinct); Han characters are flatter.
WORD_EXPONENT, HAN_EXPONENT, ZIPF_SHIFT = 1.2, 1.05, 2.7
XQUAD_LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "zh")


# -- the corpus ---------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _zipf_cdf(vocabulary: int, exponent: float) -> np.ndarray:
    weights = 1.0 / (np.arange(vocabulary) + ZIPF_SHIFT) ** exponent
    return np.cumsum(weights / weights.sum())


def _zipf_ranks(uniforms: np.ndarray, vocabulary: int, exponent: float) -> np.ndarray:
    cdf = _zipf_cdf(vocabulary, exponent)
    return np.minimum(np.searchsorted(cdf, uniforms, side="right"), vocabulary - 1)


class _Words:
    """Rank r of a language's VOCABULARY words, most frequent first, spelled in syllables as the number
    r + base in base len(syllables); spelled when first asked for, then the same string object (so only the
    words in use are made, and no word list is left behind as freed memory for the builds to reuse; for
    the same reason `_words` keeps each one, its cache included, for the life of the process)."""

    def __init__(self, script: str, language_seed: int) -> None:
        consonants, vowels = SCRIPTS[script]
        rng = np.random.default_rng(language_seed)
        syllables = [c + v for c in consonants for v in vowels]
        self._syllables = [syllables[i] for i in rng.permutation(len(syllables))]  # each language its own spelling
        self._spelled: dict[int, str] = {}

    def __getitem__(self, rank: int) -> str:
        word = self._spelled.get(rank)
        if word is None:
            number, parts = rank + len(self._syllables), []  # + base: no word is a bare syllable 0
            while number:
                number, digit = divmod(number, len(self._syllables))
                parts.append(self._syllables[digit])
            word = self._spelled[rank] = "".join(parts)
        return word


@cache
def _words(script: str, language_seed: int) -> _Words:
    return _Words(script, language_seed)


def _han_terms(text: list[str], bigrams: dict[str, str]) -> list[str]:
    """The analyser's terms of a Han text (its characters): each character, then it with the next, in runs
    of 8-20."""
    terms: list[str] = []
    run_start = 0
    while run_start < len(text):
        run = text[run_start:run_start + 8 + (run_start * 7919 % 13)]
        for i, character in enumerate(run):
            terms.append(character)
            if i + 1 < len(run):
                pair = character + run[i + 1]
                terms.append(bigrams.setdefault(pair, pair))
        run_start += len(run)
    return terms


def synthetic_corpus(passages: int, words: int, seed: int) -> tuple[list[list[str]], list[str]]:
    """(terms of every passage, its language), the same for the same arguments."""
    rng = np.random.default_rng(seed)
    names = [name for name, _, _ in LANGUAGES]
    shares = np.array([share for _, share, _ in LANGUAGES])
    language_ids = rng.choice(len(names), size=passages, p=shares / shares.sum())
    lengths = rng.integers(words * 3 // 4, words * 5 // 4 + 1, size=passages)
    han = names.index("zh")
    # Han: a character and a pair per character, so about `length` terms from length / 2 + 1 characters.
    draws = np.where(language_ids == han, lengths // 2 + 1, lengths)
    bounds = np.concatenate([[0], np.cumsum(draws)]).tolist()
    # Every passage's words drawn at once, then spelled once per distinct word of each language: the
    # corpus is the one a passage-by-passage draw gives, in a fraction of the time.
    draw_language = np.repeat(language_ids, draws)
    uniforms = rng.random(len(draw_language))
    spelled = np.empty(len(draw_language), dtype=object)
    for language_id, (_, _, script) in enumerate(LANGUAGES):
        chosen = draw_language == language_id
        if language_id == han:
            characters = np.array([chr(0x4E00 + i) for i in range(HAN_CHARACTERS)], dtype=object)
            spelled[chosen] = characters[_zipf_ranks(uniforms[chosen], HAN_CHARACTERS, HAN_EXPONENT)]
        else:
            distinct, positions = np.unique(_zipf_ranks(uniforms[chosen], VOCABULARY, WORD_EXPONENT),
                                            return_inverse=True)
            vocabulary = _words(script, seed + language_id)
            spelled[chosen] = np.array([vocabulary[rank] for rank in distinct.tolist()], dtype=object)[positions]
    del uniforms, draw_language
    bigrams: dict[str, str] = {}
    corpus = [_han_terms(spelled[start:end].tolist(), bigrams) if language_id == han else spelled[start:end].tolist()
              for language_id, start, end in zip(language_ids.tolist(), bounds, bounds[1:], strict=False)]
    return corpus, [names[i] for i in language_ids.tolist()]


def synthetic_queries(corpus: list[list[str]], languages: list[str], count: int,
                      seed: int) -> list[dict[str, list[str]]]:
    """`count` queries of 3-6 terms taken from passages (so they match), one language each, as
    `analysis.query_terms` gives them: frequent words included, as its per-language statistics keep them."""
    rng = np.random.default_rng(seed + 1)
    queries = []
    for position in rng.choice(len(corpus), size=count, replace=False):
        terms = corpus[position]
        picked = [terms[i] for i in rng.choice(len(terms), size=int(rng.integers(3, 7)), replace=False)]
        queries.append({languages[position]: list(dict.fromkeys(picked))})
    return queries


def xquad_corpus(folder: Path, passages: int,
                 queries: int) -> tuple[list[list[str]], list[str], list[dict[str, list[str]]]]:
    """(terms, language) of XQuAD's 7 x 240 paragraphs analysed as the app does, repeated in turn up to
    `passages`, and `queries` of its questions spread over the languages, as `analysis.query_terms` gives
    them for a corpus of all seven languages."""
    sys.path.insert(0, str(ROOT))
    from search import analysis

    paragraphs: list[tuple[list[str], str]] = []
    questions: list[tuple[str, str]] = []
    for language in XQUAD_LANGUAGES:
        source = folder / f"xquad.{language}.json"
        if not source.is_file():
            raise SystemExit(f"{source} is missing; give --xquad the folder of xquad.<lang>.json "
                             f"({', '.join(XQUAD_LANGUAGES)})")
        for article in json.loads(source.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                paragraphs.append((analysis.terms(paragraph["context"], language), language))
                questions.extend((qa["question"], language) for qa in paragraph["qas"][:1])
    picked = questions[::max(1, len(questions) // max(1, queries))][:queries]
    return ([paragraphs[i % len(paragraphs)][0] for i in range(passages)],
            [paragraphs[i % len(paragraphs)][1] for i in range(passages)],
            [analysis.query_terms(question, language, XQUAD_LANGUAGES) for question, language in picked])


def write_corpus(corpus: list[list[str]], languages: list[str], folder: Path) -> None:
    """The corpus as its distinct terms and one term id per term, for `read_corpus`."""
    vocabulary: dict[str, int] = {}
    term_ids = np.fromiter((vocabulary.setdefault(term, len(vocabulary)) for terms in corpus for term in terms),
                           dtype=np.int32, count=sum(map(len, corpus)))
    np.save(folder / "term_ids.npy", term_ids)
    np.save(folder / "bounds.npy", np.concatenate([[0], np.cumsum([len(terms) for terms in corpus])]))
    (folder / "vocabulary.json").write_text(json.dumps(list(vocabulary), ensure_ascii=False), encoding="utf-8")
    (folder / "languages.json").write_text(json.dumps(languages), encoding="utf-8")


def read_corpus(folder: Path) -> tuple[list[list[str]], list[str]]:
    """(terms of every passage, its language) as `write_corpus` wrote them: each passage its own list, equal
    terms one string object, as `search.analysis`'s caches leave them in a build."""
    vocabulary = np.array(json.loads((folder / "vocabulary.json").read_text(encoding="utf-8")), dtype=object)
    term_ids = np.load(folder / "term_ids.npy")
    bounds = np.load(folder / "bounds.npy").tolist()
    corpus = [vocabulary[term_ids[start:end]].tolist() for start, end in zip(bounds, bounds[1:], strict=False)]
    names: dict[str, str] = {}
    languages = [names.setdefault(name, name) for name in json.loads((folder / "languages.json").read_text())]
    return corpus, languages


# -- one contender in a child process -----------------------------------------------------------------


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status (this benchmark needs Linux)")


def _settle() -> None:
    """Free what is garbage and give the C heap's free memory back, so that the baseline is memory in use
    and a build cannot look smaller by reusing memory freed before it."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current VmRSS (Linux >= 4.0)


def _timed_queries(search, queries, repeats: int) -> float:
    medians = []
    for query in queries:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            search(query)
            times.append(time.perf_counter() - started)
        medians.append(statistics.median(times))
    return statistics.median(medians) * 1e3


def _read_terms(pipeline, path: Path) -> list[list[str]]:
    if hasattr(pipeline, "read_passage_terms"):
        return pipeline.read_passage_terms(path)
    with open(path, encoding="utf-8") as lines:  # Index.load before read_passage_terms
        return [json.loads(line) for line in lines]


def probe(name: str, args: argparse.Namespace) -> dict:
    """Build one contender in this (fresh) process; return its memory and times."""
    sys.path.insert(0, str(args.search_root))
    import rank_bm25

    from search import pipeline  # imported before the baseline: it loads torch and more
    from search.bm25 import BM25Index

    started_mb = _status_mb("VmRSS:")
    corpus, languages = (None, None) if name == "load" else read_corpus(args.inputs)
    queries = json.loads((args.inputs / "queries.json").read_text(encoding="utf-8"))[:args.queries]
    _settle()
    baseline_mb = _status_mb("VmRSS:")
    _reset_peak()
    started = time.perf_counter()
    if name == "rank-bm25":
        model = rank_bm25.BM25Okapi(corpus, k1=K1, b=B)

        def search(query):  # the terms of the query's own language, the first group (rank-bm25 has no others)
            scores = model.get_scores(next(iter(query.values())))
            return np.argsort(-scores, kind="stable")[:10]
    else:
        if name == "load":
            corpus = _read_terms(pipeline, args.inputs / "terms.jsonl")
            languages = json.loads((args.inputs / "languages.json").read_text(encoding="utf-8"))
        statistics_ = "corpus" if name.endswith("corpus") else "language"
        index = BM25Index.build(corpus, K1, B, languages=languages if statistics_ == "language" else None)

        def search(query):
            return index.search(query, 10)
    build_s = time.perf_counter() - started
    peak_mb = _status_mb("VmHWM:") - baseline_mb
    _settle()
    kept_mb = _status_mb("VmRSS:") - baseline_mb
    # rank-bm25 scores every passage in Python (about 1,000 times our time): its queries run once each.
    query_ms = _timed_queries(search, queries, 1 if name == "rank-bm25" else args.repeats)
    return {"corpus_mb": baseline_mb - started_mb, "peak_mb": peak_mb, "kept_mb": kept_mb, "build_s": build_s,
            "query_ms": query_ms, "terms": sum(map(len, corpus)), "passages": len(corpus)}


def compare_queries(args: argparse.Namespace) -> dict:
    """Our index and the --baseline revision's built side by side in this process; every query's scores
    compared, then the queries timed alternating between the two (the order flipping each repeat)."""
    import importlib.util

    sys.path.insert(0, str(ROOT))
    from search.bm25 import BM25Index

    spec = importlib.util.spec_from_file_location("baseline_bm25", args.baseline_root / "search" / "bm25.py")
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    corpus, languages = read_corpus(args.inputs)
    queries = json.loads((args.inputs / "queries.json").read_text(encoding="utf-8"))
    results = {}
    for statistics_ in ("language", "corpus"):
        groups = languages if statistics_ == "language" else None
        contenders = {"ours": BM25Index.build(corpus, K1, B, languages=groups),
                      "baseline": baseline.BM25Index.build(corpus, K1, B, languages=groups)}
        identical = sum(np.array_equal(contenders["ours"].scores(query), contenders["baseline"].scores(query))
                        and contenders["ours"].search(query, 10) == contenders["baseline"].search(query, 10)
                        for query in queries)
        times: dict[str, list[float]] = {"ours": [], "baseline": []}
        for repeat in range(args.repeats):
            order = ["ours", "baseline"] if repeat % 2 == 0 else ["baseline", "ours"]
            for query in queries:
                for name in order:
                    started = time.perf_counter()
                    contenders[name].search(query, 10)
                    times[name].append(time.perf_counter() - started)
        results[statistics_] = {"identical": identical, "queries": len(queries),
                                **{f"{name}_ms": statistics.median(values) * 1e3 for name, values in times.items()}}
        del contenders
        gc.collect()
    return results


# -- the parent: interleaved rounds, the table ----------------------------------------------------------


def _extract(revision: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision, "search"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _write_inputs(args: argparse.Namespace, folder: Path) -> None:
    """The corpus (`write_corpus`) and queries.json (10 x --queries of them) that every child reads; with the
    load contender, the corpus also as Index.save writes it (terms.jsonl)."""
    if args.xquad:
        corpus, languages, queries = xquad_corpus(args.xquad, args.passages, args.queries * 10)
    else:
        corpus, languages = synthetic_corpus(args.passages, args.words, args.seed)
        queries = synthetic_queries(corpus, languages, args.queries * 10, args.seed)
    write_corpus(corpus, languages, folder)
    (folder / "queries.json").write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
    if not args.skip_load:
        with open(folder / "terms.jsonl", "w", encoding="utf-8") as out:
            for terms in corpus:
                out.write(json.dumps(terms, ensure_ascii=False) + "\n")


def _machine() -> str:
    model = platform.processor() or "?"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{model}, {os.cpu_count()} CPUs, load average {load}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=200, help="mean terms per passage (default 200)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=20, help="queries timed after each build (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="times each query runs; its median counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", help="a git revision whose search/ also runs, e.g. main")
    parser.add_argument("--skip-load", action="store_true", help="leave out the cache-load contender")
    parser.add_argument("--xquad", type=Path, help="folder of xquad.<lang>.json: its paragraphs, repeated, "
                        "instead of the synthetic corpus (--words and --seed then unused)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--search-root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(compare_queries(args) if args.probe == "queries" else probe(args.probe, args)))
        return

    common = ["--passages", str(args.passages), "--queries", str(args.queries), "--repeats", str(args.repeats)]
    with tempfile.TemporaryDirectory() as temporary:
        _write_inputs(args, Path(temporary))
        common += ["--inputs", temporary]
        contenders: dict[str, list[str]] = {
            "rank-bm25": ["--probe", "rank-bm25"],
            "ours, language": ["--probe", "language"],
            "ours, corpus": ["--probe", "corpus"],
        }
        if args.baseline:
            old = str(_extract(args.baseline, Path(temporary) / "baseline"))
            contenders[f"{args.baseline}, language"] = ["--probe", "language", "--search-root", old]
            contenders[f"{args.baseline}, corpus"] = ["--probe", "corpus", "--search-root", old]
        if not args.skip_load:
            contenders["load, language"] = ["--probe", "load"]
            if args.baseline:
                contenders[f"{args.baseline} load"] = ["--probe", "load", "--search-root", old]
        print(f"machine: {_machine()}", flush=True)
        results: dict[str, list[dict]] = {name: [] for name in contenders}
        names = list(contenders)
        for round_number in range(args.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                completed = subprocess.run([sys.executable, __file__, *common, *contenders[name]],
                                           capture_output=True, text=True, check=False)
                if completed.returncode != 0:
                    raise RuntimeError(f"{name} failed:\n{completed.stderr[-3000:]}")
                results[name].append(json.loads(completed.stdout.strip().splitlines()[-1]))
            print(f"round {round_number + 1}/{args.rounds}: " + ", ".join(
                f"{name} {results[name][-1]['peak_mb']:.0f} MB {results[name][-1]['build_s']:.1f} s" for name in names),
                flush=True)
        if args.baseline:
            print(f"queries: ours and {args.baseline} in one process, alternating", flush=True)
            completed = subprocess.run(
                [sys.executable, __file__, *common, "--probe", "queries", "--baseline-root", old],
                capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                raise RuntimeError(f"the query comparison failed:\n{completed.stderr[-3000:]}")
            compared = json.loads(completed.stdout.strip().splitlines()[-1])
        print(f"machine after: {_machine()}")

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in results[name])

    first = results["rank-bm25"][0]
    source = (f"XQuAD's {len(XQUAD_LANGUAGES) * 240:,} paragraphs repeated" if args.xquad
              else f"synthetic (seed {args.seed})")
    print(f"\ncorpus: {source}, {first['passages']:,} passages, {first['terms']:,} terms, "
          f"{len(XQUAD_LANGUAGES) if args.xquad else len(LANGUAGES)} languages; its token lists take "
          f"{median('rank-bm25', 'corpus_mb'):.0f} MB; medians of {args.rounds} rounds, {args.queries} queries")
    # Each of ours against the same contender at --baseline, for the query time (and the peak).
    counterpart = {"ours, language": f"{args.baseline}, language", "ours, corpus": f"{args.baseline}, corpus",
                   "load, language": f"{args.baseline} load"} if args.baseline else {}
    versus = f"x {args.baseline}"[:12] if args.baseline else ""
    print(f"{'':20}{'peak MB':>9}{'x rank-bm25':>13}{'kept MB':>9}{'build s':>9}{'x':>7}{'query ms':>10}{'x':>8}"
          + (f"{'peak ' + versus:>19}{'query ' + versus:>19}" if versus else ""))
    base = {key: median("rank-bm25", key) for key in ("peak_mb", "build_s", "query_ms")}
    for name in names:
        peak, kept, build, query = (median(name, key) for key in ("peak_mb", "kept_mb", "build_s", "query_ms"))
        line = (f"{name:20}{peak:9.0f}{peak / base['peak_mb']:12.2f}x{kept:9.0f}{build:9.1f}"
                f"{build / base['build_s']:6.2f}x{query:10.2f}{query / base['query_ms']:7.4f}x")
        if name in counterpart:
            other = counterpart[name]
            line += f"{peak / median(other, 'peak_mb'):18.2f}x{query / median(other, 'query_ms'):18.3f}x"
        print(line)
    print("peak: VmHWM above the baseline after the corpus is in memory (load: before reading terms.jsonl); "
          "kept: VmRSS with the index alive; x: ratio to rank-bm25 (below 1: less memory or time)"
          + (f"; x {args.baseline}: ours against the same contender at {args.baseline}" if versus else ""))
    if args.baseline:
        print(f"\nquery time in one process, {args.repeats} alternating repeats, median of every search (top 10):")
        for statistics_, figures in compared.items():
            print(f"  {statistics_} statistics: ours {figures['ours_ms']:.3f} ms, {args.baseline} "
                  f"{figures['baseline_ms']:.3f} ms, {figures['ours_ms'] / figures['baseline_ms']:.3f}x; "
                  f"scores and top 10 identical for {figures['identical']} of {figures['queries']} queries")
    ours = median("ours, language", "peak_mb") / base["peak_mb"]
    print(f"goal (issue 19): build peak <= 1.5x rank-bm25's; ours with language statistics: {ours:.2f}x, "
          + ("met" if ours <= 1.5 else "NOT met"))


if __name__ == "__main__":
    main()
