"""What preparing a reranker's onnx and int8 forms costs, as a multiple of what torch needs to score the same
pairs (issue 19 §2's goal: at most 5x for the base shape), interleaved in rounds.

    python benchmarks/bench_prepare.py                          # bge-reranker-base's shape, 20 pairs, 3 rounds
    python benchmarks/bench_prepare.py --shape m3 --rounds 1    # bge-reranker-v2-m3's shape (slow: minutes)
    python benchmarks/bench_prepare.py --backends onnx --rounds 5 --work /tmp/bench-prepare

Every round runs, each in a fresh process and one after another (an export of the base shape peaks at several
GB, so never two at once):

- torch: load the random model of the shape (`bench_rerank.build_base_shaped`) with the torch backend, score
  the pairs once (the time counted: what a user waits for), then again;
- for each backend: the first `rerank` (load + score) on an empty export cache, then the same on the filled
  cache. The preparation time is the difference: what the first use costs beyond every later one.

Printed per backend: the preparation's seconds, its multiple of torch's scoring time in the same round
(median [min-max] over rounds), the peak memory of the process that prepared, and the cache entry's own
seconds (meta.json). CPU seconds (user + system, all threads) are printed too: on a shared machine they
move less with the load than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_rerank import QUERY, build_base_shaped, read_passages  # noqa: E402
from benchmarks.interleaved import peak_rss_mb, run_probe  # noqa: E402


def probe(args: argparse.Namespace) -> None:
    """In a fresh process: the first rerank of `args.pairs` pairs with `args.probe`'s backend (load + score),
    then a second score; print seconds, CPU seconds and peak memory as JSON."""
    import onnxruntime  # noqa: F401  (imports before the clock starts: every probe pays them alike)
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from search.loading import load_reranker

    passages = read_passages(args.pairs, seed=0, cut=False)
    started, cpu = time.perf_counter(), time.process_time()
    reranker = load_reranker(args.model, "cpu", fallback=False, backend=args.probe).model
    loaded = time.perf_counter()
    reranker.inner.score(QUERY, passages)  # the backend itself: no score cache in front
    first = time.perf_counter()
    first_cpu = time.process_time() - cpu
    reranker.inner.score(QUERY, passages)
    second = time.perf_counter() - first
    print(json.dumps({"label": reranker.label, "load_s": loaded - started, "score_s": first - loaded,
                      "first_rerank_s": first - started, "first_rerank_cpu_s": first_cpu, "second_score_s": second,
                      "peak_mb": peak_rss_mb()}))


def entry_seconds(cache: Path) -> dict[str, float]:
    """What each export cache entry's meta.json says it took."""
    found = {}
    for meta in cache.glob("*/*/*/meta.json"):
        found[meta.parent.name] = json.loads(meta.read_text(encoding="utf-8")).get("seconds")
    return found


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("base", "m3"), default="base")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="onnx,int8")
    parser.add_argument("--model", help="a cross-encoder folder instead of the random model of --shape")
    parser.add_argument("--work", help="keep the random model here (the export caches are always fresh)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args)
        return

    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    with tempfile.TemporaryDirectory() as temporary:
        model = args.model
        if model is None:
            model = str(Path(args.work or temporary) / f"model-{args.shape}")
            if not (Path(model) / "config.json").exists():
                print(f"building a random {args.shape}-shaped model ...", flush=True)
                build_base_shaped(Path(model), [QUERY, *read_passages(2000, seed=1)], args.shape)
        script = str(Path(__file__).resolve())
        common = ["--model", model, "--pairs", str(args.pairs)]
        torch_seconds: list[float] = []
        results: dict[str, list[dict]] = {name: [] for name in backends}
        print(f"load before: {os.getloadavg()[0]:.1f}", flush=True)
        for round_number in range(args.rounds):
            with tempfile.TemporaryDirectory(dir=args.work) as torch_cache:
                torch_run = run_probe(script, [*common, "--probe", "torch"], {"SEARCH_ONNX_CACHE": torch_cache})
            torch_seconds.append(torch_run["score_s"])
            line = [f"round {round_number + 1}: torch scores {args.pairs} pairs in {torch_run['score_s']:.1f} s "
                    f"(again {torch_run['second_score_s']:.1f} s)"]
            for name in backends:
                with tempfile.TemporaryDirectory(dir=args.work) as cache:
                    env = {"SEARCH_ONNX_CACHE": cache}
                    empty = run_probe(script, [*common, "--probe", name], env)
                    made = entry_seconds(Path(cache))
                    filled = run_probe(script, [*common, "--probe", name], env)
                preparation = empty["first_rerank_s"] - filled["first_rerank_s"]
                results[name].append({"preparation_s": preparation, "ratio": preparation / torch_run["score_s"],
                                      "cpu_s": empty["first_rerank_cpu_s"] - filled["first_rerank_cpu_s"],
                                      "peak_mb": empty["peak_mb"], "entries": made, "label": empty["label"],
                                      "score_s": filled["score_s"]})
                line.append(f"{name}: prepared in {preparation:.1f} s ({preparation / torch_run['score_s']:.1f}x), "
                            f"entries {made}, peak {empty['peak_mb']:.0f} MB")
            print("; ".join(line), flush=True)
        print(f"load after: {os.getloadavg()[0]:.1f}", flush=True)

    print(f"\nShape {args.shape}, {args.pairs} pairs, {args.rounds} rounds; torch scores them in "
          f"{median_range(torch_seconds)} s.\n")
    print("| backend | preparation s | x torch's scoring time (goal <= 5) | CPU s | peak MB of the preparing "
          "process | its first score s (cache filled) |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name, rows in results.items():
        label = rows[0]["label"].rpartition(" · ")[2]
        print(f"| {name}: {label} | {median_range([row['preparation_s'] for row in rows])} | "
              f"{median_range([row['ratio'] for row in rows])} | {median_range([row['cpu_s'] for row in rows])} | "
              f"{statistics.median(row['peak_mb'] for row in rows):.0f} | "
              f"{median_range([row['score_s'] for row in rows])} |")


if __name__ == "__main__":
    main()
