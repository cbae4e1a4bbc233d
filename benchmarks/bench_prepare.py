"""What preparing a reranker's onnx and int8 forms costs, as a multiple of what torch needs to score the same
pairs (issue 19 §2's goal: at most 5x for the base shape), for this tree and a baseline commit side by side in
one run, interleaved round by round.

    python benchmarks/bench_prepare.py                          # bge-reranker-base's shape, 20 pairs, 3 rounds,
                                                                # against the baseline commit 4e4b434
    python benchmarks/bench_prepare.py --shape m3 --rounds 1    # bge-reranker-v2-m3's shape (slow: minutes)
    python benchmarks/bench_prepare.py --backends onnx --rounds 5 --work /tmp/bench-prepare --baseline none
    python benchmarks/bench_prepare.py --backends int8,int8:c32,int8:nosq,int8:nobc --baseline none
                                                                # NNCF's costly options, one at a time (this tree)

Every round runs, each in a fresh process and one after another (an export of the base shape peaks at several
GB, so never two at once):

- torch: load the random model of the shape (`bench_rerank.build_base_shaped`) with the torch backend (this
  tree), score the pairs once (the time counted: what a user waits for), then again;
- for each backend and each tree (the order of the trees turns every round): the first `rerank` (load +
  score) on an empty export cache, then the same on the filled cache. The preparation time is the difference:
  what the first use costs beyond every later one.

``int8:<options>`` is the int8 backend made with other NNCF options (`openvino_int8.Int8Options`; this tree
only): ``c<N>`` calibrates on N pairs, ``nosq`` turns SmoothQuant off, ``nobc`` fast bias correction off,
joined by ``-`` (``int8:c32-nosq``).

Printed per backend and tree: the preparation's seconds, its multiple of torch's scoring time in the same round
(median [min-max] over rounds), CPU seconds (user + system, all threads: on a shared machine they move less
with the load than wall time) and their multiple of torch's CPU seconds for the scoring, the peak memory of
the process that prepared, and how close the prepared form scores to torch (max |logit difference|,
Spearman's rho: the retention on a random model's pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.interleaved import peak_rss_mb, run_probe  # noqa: E402  (imports nothing of search)

DEFAULT_BASELINE = "4e4b434"  # main before issue 19 §2: int8 from an ONNX export, the whole graph fused


def probe(args: argparse.Namespace) -> None:
    """In a fresh process, with the `search` package of `args.tree`: the first rerank of the pairs in
    `args.passages` with `args.probe`'s backend (load + score), then a second score; print seconds, CPU
    seconds, peak memory and the scores as JSON."""
    sys.path.insert(0, args.tree)  # before anything imports search: the tree measured
    import onnxruntime  # noqa: F401  (imports before the clock starts: every probe pays them alike)
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import search
    from search.loading import load_reranker

    backend, _, options = args.probe.partition(":")
    if options:
        from search.backends.runtime import openvino_int8

        openvino_int8.INT8_OPTIONS = parse_options(options, openvino_int8.Int8Options)
    query, passages = json.loads(Path(args.passages).read_text(encoding="utf-8"))
    started, cpu = time.perf_counter(), time.process_time()
    reranker = load_reranker(args.model, "cpu", fallback=False, backend=backend).model
    loaded, loaded_cpu = time.perf_counter(), time.process_time()
    scores = reranker.inner.score(query, passages)  # the backend itself: no score cache in front
    first = time.perf_counter()
    first_cpu = time.process_time() - cpu
    score_cpu = time.process_time() - loaded_cpu
    reranker.inner.score(query, passages)
    second = time.perf_counter() - first
    print(json.dumps({"label": reranker.label, "search": search.__file__, "load_s": loaded - started,
                      "score_s": first - loaded, "first_rerank_s": first - started, "first_rerank_cpu_s": first_cpu,
                      "score_cpu_s": score_cpu, "second_score_s": second, "peak_mb": peak_rss_mb(),
                      "scores": [s.raw for s in scores]}))


def parse_options(text: str, options_type):
    """``c32-nosq`` -> Int8Options(calibration_size=32, smooth_quant=False)."""
    values = {}
    for part in text.split("-"):
        if part.startswith("c") and part[1:].isdigit():
            values["calibration_size"] = int(part[1:])
        elif part in ("nosq", "nobc"):
            values["smooth_quant" if part == "nosq" else "bias_correction"] = False
        else:
            raise SystemExit(f"unknown int8 option {part!r} in {text!r}; use c<N>, nosq, nobc joined by '-'")
    return options_type(**values)


def entry_seconds(cache: Path) -> dict[str, float]:
    """What each export cache entry's meta.json says it took."""
    found = {}
    for meta in cache.glob("*/*/*/meta.json"):
        found[meta.parent.name] = json.loads(meta.read_text(encoding="utf-8")).get("seconds")
    return found


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def median_range(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("base", "m3"), default="base")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="onnx,int8")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE,
                        help=f"the commit to compare with, or 'none' (default {DEFAULT_BASELINE})")
    parser.add_argument("--model", help="a cross-encoder folder instead of the random model of --shape")
    parser.add_argument("--work", help="keep the random model here (the export caches are always fresh)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--tree", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--passages", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args)
        return

    from benchmarks.bench_rerank import QUERY, build_base_shaped, read_passages

    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        trees = {"this tree": str(ROOT)}
        if args.baseline != "none":
            base_tree = Path(scratch) / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.baseline], cwd=ROOT,
                           check=True, capture_output=True)
            trees[f"baseline {args.baseline}"] = str(base_tree)
        try:
            results = run_rounds(args, backends, trees, scratch, QUERY, build_base_shaped, read_passages)
        finally:
            if args.baseline != "none":
                subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT,
                               capture_output=True)
    report(args, results)


def run_rounds(args, backends, trees, scratch, query, build_base_shaped, read_passages) -> dict:
    model = args.model
    if model is None:
        model = str(Path(args.work or scratch) / f"model-{args.shape}")
        if not (Path(model) / "config.json").exists():
            print(f"building a random {args.shape}-shaped model ...", flush=True)
            build_base_shaped(Path(model), [query, *read_passages(2000, seed=1)], args.shape)
    passages_file = Path(scratch) / "passages.json"
    passages_file.write_text(json.dumps([query, read_passages(args.pairs, seed=0, cut=False)]), encoding="utf-8")
    script = str(Path(__file__).resolve())
    common = ["--model", model, "--passages", str(passages_file)]
    torch_runs: list[dict] = []
    runs: dict[tuple[str, str], list[dict]] = {}
    print(f"load before: {os.getloadavg()[0]:.1f}", flush=True)
    for round_number in range(args.rounds):
        with tempfile.TemporaryDirectory(dir=scratch) as torch_cache:
            torch_run = run_probe(script, [*common, "--probe", "torch"], {"SEARCH_ONNX_CACHE": torch_cache})
        torch_runs.append(torch_run)
        line = [f"round {round_number + 1}: torch scores {args.pairs} pairs in {torch_run['score_s']:.1f} s"]
        order = list(trees.items())
        order = order[round_number % len(order):] + order[:round_number % len(order)]
        for name in backends:
            for tree_name, tree in order:
                if ":" in name and tree != str(ROOT):
                    continue  # NNCF options are this tree's
                with tempfile.TemporaryDirectory(dir=scratch) as cache:
                    env = {"SEARCH_ONNX_CACHE": cache}
                    probe_args = [*common, "--probe", name, "--tree", tree]
                    empty = run_probe(script, probe_args, env)
                    made = entry_seconds(Path(cache))
                    filled = run_probe(script, probe_args, env)
                if Path(empty["search"]).parent.parent != Path(tree):
                    raise RuntimeError(f"the probe for {tree_name} ran {empty['search']}")
                preparation = empty["first_rerank_s"] - filled["first_rerank_s"]
                row = {"preparation_s": preparation, "ratio": preparation / torch_run["score_s"],
                       "cpu_s": empty["first_rerank_cpu_s"] - filled["first_rerank_cpu_s"],
                       "peak_mb": empty["peak_mb"], "entries": made, "label": empty["label"],
                       "score_s": filled["score_s"], "max_diff": max(abs(a - b) for a, b in zip(
                           empty["scores"], torch_run["scores"], strict=True)),
                       "rho": spearman(empty["scores"], torch_run["scores"]),
                       "cpu_ratio": (empty["first_rerank_cpu_s"] - filled["first_rerank_cpu_s"])
                       / torch_run["score_cpu_s"], "load": os.getloadavg()[0]}
                runs.setdefault((name, tree_name), []).append(row)
                line.append(f"{name} ({tree_name}): prepared in {preparation:.1f} s "
                            f"({row['ratio']:.1f}x), entries {made}, peak {empty['peak_mb']:.0f} MB")
        print("; ".join(line), flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}", flush=True)
    return {"torch": torch_runs, "runs": runs}


def report(args, results) -> None:
    torch_seconds = [run["score_s"] for run in results["torch"]]
    print(f"\nShape {args.shape}, {args.pairs} pairs, {args.rounds} round(s); torch scores them in "
          f"{median_range(torch_seconds)} s (median [min-max]).\n")
    torch_cpu = [run["score_cpu_s"] for run in results["torch"]]
    print(f"Its CPU seconds (all threads) for them: {median_range(torch_cpu)}.\n")
    print("| backend | tree | preparation s | x torch's scoring time (goal <= 5) | CPU s | x torch's CPU s "
          "| peak MB of the preparing process | its first score s (cache filled) | max abs diff vs torch "
          "| Spearman vs torch |")
    print("| --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for (name, tree_name), rows in results["runs"].items():
        print(f"| {name} | {tree_name} | {median_range([row['preparation_s'] for row in rows])} | "
              f"{median_range([row['ratio'] for row in rows])} | {median_range([row['cpu_s'] for row in rows])} | "
              f"{median_range([row['cpu_ratio'] for row in rows])} | "
              f"{statistics.median(row['peak_mb'] for row in rows):.0f} | "
              f"{median_range([row['score_s'] for row in rows], 2)} | {max(row['max_diff'] for row in rows):.1e} | "
              f"{min(row['rho'] for row in rows):.4f} |")
    print("\nLabels: " + "; ".join(f"{name} ({tree}): {rows[0]['label']}" for (name, tree), rows
                                    in results["runs"].items()))


if __name__ == "__main__":
    main()
